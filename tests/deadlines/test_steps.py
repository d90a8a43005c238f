"""Deadlines: claim and escalation steps fire once, from the database, even after downtime."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.db import unit_of_work
from app.models.cases import Case, CaseEvent
from app.models.deadlines import ScheduledStep
from app.runtime import Runtime
from app.worker.loop import run_once
from tests.conftest import make_settings
from tests.factories import COUNTY_OFFICE, RESIDENT, TOWN_OFFICE, WORKER_A, WORKER_B, make_city
from tests.helpers import Phone, latest_case


@pytest.fixture
def city(rt):
    with unit_of_work(rt.sessions) as session:
        make_city(session)


def _case(rt) -> Case:
    with rt.sessions() as s:
        return latest_case(s)


def _kinds(rt) -> list[str]:
    with rt.sessions() as s:
        return list(s.scalars(select(CaseEvent.kind).order_by(CaseEvent.id)))


def test_deadlines_come_from_the_policy(rt, gateway, city, clock):
    Phone(rt, gateway, RESIDENT).text("楼道灯坏了")
    case = _case(rt)
    assert case.priority == "normal"
    assert case.claim_due_at == clock.now + timedelta(minutes=30)
    assert case.escalate_due_at == clock.now + timedelta(minutes=60)
    assert case.resolve_due_at == clock.now + timedelta(hours=72)
    Phone(rt, gateway, "+8613700000002").text("着火了！翁山新村3幢")
    urgent = _case(rt)
    assert urgent.priority == "urgent"
    assert urgent.claim_due_at == clock.now + timedelta(minutes=10)


def test_unclaimed_case_climbs_to_town_then_county(rt, gateway, city, clock):
    resident = Phone(rt, gateway, RESIDENT)
    resident.text("下水道堵了")
    code = _case(rt).code
    assert gateway.to(WORKER_B) == []  # off the roster at first

    clock.advance(minutes=29)
    run_once(rt, gateway)
    assert gateway.to(TOWN_OFFICE) == []

    clock.advance(minutes=2)  # past claim_within
    run_once(rt, gateway)
    case = _case(rt)
    assert case.level == "grid" and case.status == "open"
    assert any("超时未签收" in b and f"#{code}" in b for b in gateway.to(WORKER_B))
    assert any("超时未签收" in b for b in gateway.to(TOWN_OFFICE))
    assert gateway.to(COUNTY_OFFICE) == []

    clock.advance(minutes=30)  # past escalate_after
    run_once(rt, gateway)
    case = _case(rt)
    assert case.level == "county" and case.status == "open"
    assert any(f"#{code}" in b and "上报" in b for b in gateway.to(COUNTY_OFFICE))
    assert _kinds(rt).count("claim_overdue") == 1
    assert _kinds(rt).count("escalated") == 1

    Phone(rt, gateway, COUNTY_OFFICE).text(f"{code} 收到")
    assert _case(rt).claimed_by == COUNTY_OFFICE


def test_claim_stops_the_claim_deadlines(rt, gateway, city, clock):
    Phone(rt, gateway, RESIDENT).text("电梯困人")
    code = _case(rt).code
    Phone(rt, gateway, WORKER_A).text(f"{code} 收到")
    clock.advance(hours=2)
    run_once(rt, gateway)
    assert gateway.to(TOWN_OFFICE) == [] and gateway.to(COUNTY_OFFICE) == []
    assert _case(rt).level == "grid"
    with rt.sessions() as s:
        outcomes = dict(s.execute(select(ScheduledStep.kind, ScheduledStep.outcome)).all())
    assert outcomes["claim_overdue"] == "cancelled" and outcomes["escalate"] == "cancelled"


def test_claimed_but_unresolved_escalates_to_county(rt, gateway, city, clock):
    Phone(rt, gateway, RESIDENT).text("围墙倒塌")
    code = _case(rt).code
    Phone(rt, gateway, WORKER_A).text(f"{code} 收到")
    clock.advance(hours=72, seconds=1)
    run_once(rt, gateway)
    case = _case(rt)
    assert case.level == "county" and case.status == "open"
    with rt.sessions() as s:
        event = s.scalar(select(CaseEvent).where(CaseEvent.kind == "escalated"))
        assert event.detail["reason"] == "not resolved in time"


def test_deadlines_missed_while_down_fire_once_on_start(rt, gateway, city, clock, settings):
    Phone(rt, gateway, RESIDENT).text("路面塌陷")
    # Everything is down for three hours; a fresh runtime (a restarted process) starts.
    clock.advance(hours=3)
    restarted = Runtime.build(make_settings(settings.database_url), clock=clock)
    try:
        run_once(restarted, gateway)
        run_once(restarted, gateway)
    finally:
        restarted.close()
    kinds = _kinds(rt)
    assert kinds.count("claim_overdue") == 1
    assert kinds.count("escalated") == 1
    assert _case(rt).level == "county"
    with rt.sessions() as s:
        pending = s.scalar(
            select(func.count()).where(
                ScheduledStep.done_at.is_(None), ScheduledStep.due_at <= clock.now
            )
        )
        assert pending == 0


def test_rating_window_closes_a_resolved_case(rt, gateway, city, clock):
    Phone(rt, gateway, RESIDENT).text("绿化带杂草")
    code = _case(rt).code
    Phone(rt, gateway, WORKER_A).text(f"{code} 办结 已清理")
    clock.advance(hours=23)
    run_once(rt, gateway)
    assert _case(rt).status == "resolved"
    clock.advance(hours=2)
    run_once(rt, gateway)
    case = _case(rt)
    assert case.status == "closed" and case.rating is None and case.open_code is None


def test_policy_file_changes_deadlines(db_url, clock, gateway, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[policies.normal]\nclaim_within = "5m"\nescalate_after = "15m"\nresolve_within = "1d"\n'
        '[policies.elderly]\nclaim_within = "2m"\nescalate_after = "4m"\nresolve_within = "4h"\n'
        '[[priority]]\npolicy = "elderly"\nkeywords = ["老人"]\n',
        encoding="utf-8",
    )
    rt = Runtime.build(make_settings(db_url, policy_file=policy), clock=clock)
    try:
        with unit_of_work(rt.sessions) as session:
            make_city(session)
        Phone(rt, gateway, RESIDENT).text("家里老人摔倒了")
        case = _case(rt)
        assert case.priority == "elderly"
        assert case.claim_due_at == clock.now + timedelta(minutes=2)
        clock.advance(minutes=4, seconds=1)
        run_once(rt, gateway)
        assert _case(rt).level == "county"
    finally:
        rt.close()
