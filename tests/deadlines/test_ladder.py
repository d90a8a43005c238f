"""The ladder: grid → town → county (→ city by an office); the top is never silent,
each office gets a daily digest of its overdue cases."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.models.cases import Case, CaseEvent
from app.models.deadlines import PeriodicRun
from app.runtime import Runtime
from app.worker.loop import run_once
from tests.conftest import make_settings
from tests.factories import COUNTY_OFFICE, RESIDENT, TOWN_OFFICE, WORKER_A
from tests.helpers import Phone, latest_case


def _case(rt: Runtime) -> Case:
    with rt.sessions() as s:
        return latest_case(s)


def _events(rt: Runtime, kind: str) -> list[CaseEvent]:
    with rt.sessions() as s:
        return list(
            s.scalars(select(CaseEvent).where(CaseEvent.kind == kind).order_by(CaseEvent.id))
        )


def test_escalated_to_town_then_unclaimed_there_goes_to_county(rt, gateway, city, clock):
    Phone(rt, gateway, RESIDENT).text("违章搭建")
    code = _case(rt).code
    Phone(rt, gateway, WORKER_A).text(f"{code} 上报 需要街道执法")
    case = _case(rt)
    assert (case.level, case.status) == ("town", "open")
    assert any(f"#{code}" in b and "需要街道执法" in b for b in gateway.to(TOWN_OFFICE))
    [to_town] = _events(rt, "escalated")
    assert to_town.detail["reason"] == "需要街道执法" and to_town.detail["to"] == "town"

    # The town has the rest of the claim window (60 m - 30 m) before the county is told.
    clock.advance(minutes=29)
    run_once(rt, gateway)
    assert _case(rt).level == "town" and gateway.to(COUNTY_OFFICE) == []
    clock.advance(minutes=2)
    run_once(rt, gateway)
    assert (_case(rt).level, _case(rt).status) == ("county", "open")
    to_county = _events(rt, "escalated")[-1]
    assert to_county.detail["reason"] == "not claimed in time"
    assert to_county.detail["from"] == "town" and to_county.detail["to"] == "county"
    assert any(f"#{code}" in b for b in gateway.to(COUNTY_OFFICE))


def test_the_top_of_the_ladder_is_re_sent_until_claimed(rt, gateway, city, clock):
    Phone(rt, gateway, RESIDENT).text("化粪池满溢")
    code = _case(rt).code
    clock.advance(minutes=61)
    run_once(rt, gateway)
    assert _case(rt).level == "county"
    [overdue] = _events(rt, "claim_overdue")
    assert overdue.detail["reason"].startswith("not claimed in time")
    county = Phone(rt, gateway, COUNTY_OFFICE)
    assert len(county.inbox()) == 1

    for round_ in range(1, 3):  # every 30 minutes (resend_every), until claimed
        clock.advance(minutes=29)
        run_once(rt, gateway)
        assert len(county.inbox()) == round_
        clock.advance(minutes=1)
        run_once(rt, gateway)
        assert len(county.inbox()) == round_ + 1
        assert "仍无人签收" in county.last() and f"#{code}" in county.last()
    resent = _events(rt, "resent")
    assert len(resent) == 2
    assert resent[0].detail["reason"] == "still unclaimed at the top of the ladder"

    county.text(f"{code} 收到")
    received = len(county.inbox())
    clock.advance(hours=3)
    run_once(rt, gateway)
    assert len(county.inbox()) == received
    assert len(_events(rt, "resent")) == 2


def test_each_office_gets_one_daily_digest_of_its_overdue_cases(rt, gateway, city, clock):
    Phone(rt, gateway, RESIDENT).text("井盖丢失")
    late = _case(rt).code
    Phone(rt, gateway, "+8613700000002").text("翁山新村3幢 楼道堆物")
    on_time = _case(rt).code
    Phone(rt, gateway, WORKER_A).text(f"#{on_time} 收到")
    # Next morning, 07:59 and 08:00 local (Asia/Shanghai = UTC+8).
    clock.now = clock.now.replace(day=26, hour=0) - timedelta(minutes=1)
    run_once(rt, gateway)
    assert not [b for b in gateway.to(TOWN_OFFICE) if "逾期诉求" in b]
    clock.advance(minutes=1)
    run_once(rt, gateway)
    run_once(rt, gateway)
    # A second worker process (its own caches) the same morning sends nothing more.
    other = Runtime.build(make_settings(rt.settings.database_url), clock=clock)
    try:
        clock.advance(minutes=5)
        run_once(other, gateway)
    finally:
        other.close()
    for office in (TOWN_OFFICE, COUNTY_OFFICE):
        digests = [b for b in gateway.to(office) if "逾期诉求" in b]
        assert digests == [f"2026-11-26逾期诉求1件：#{late}。回复“编号 收到”签收。"]
    with rt.sessions() as s:
        runs = s.scalars(
            select(PeriodicRun).where(PeriodicRun.period == "2026-11-26").order_by(PeriodicRun.job)
        ).all()
        assert [(r.job, r.sent) for r in runs] == [("overdue_digest", 2), ("roster_gap", 1)]
