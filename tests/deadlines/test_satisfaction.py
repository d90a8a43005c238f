"""Satisfaction: a rating window, `2` reopens with a shorter claim deadline,
a second `2` escalates."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.models.cases import Case, CaseEvent
from app.runtime import Runtime
from app.worker.loop import run_once
from tests.factories import RESIDENT, TOWN_OFFICE, WORKER_A
from tests.helpers import Phone, latest_case


def _case(rt: Runtime) -> Case:
    with rt.sessions() as s:
        return latest_case(s)


def _kinds(rt: Runtime) -> list[str]:
    with rt.sessions() as s:
        return list(s.scalars(select(CaseEvent.kind).order_by(CaseEvent.id)))


def test_rating_window_then_closed(rt, gateway, city, clock):
    resident = Phone(rt, gateway, RESIDENT)
    resident.text("垃圾未清运")
    code = _case(rt).code
    Phone(rt, gateway, WORKER_A).text(f"{code} 办结 已清运")
    clock.advance(hours=24, seconds=1)
    run_once(rt, gateway)
    case = _case(rt)
    assert (case.status, case.rating, case.open_code) == ("closed", None, None)
    # A `2` after the window has nothing to reopen: it is a new request.
    resident.text("2")
    assert _case(rt).id != case.id


def test_not_satisfied_reopens_with_a_shorter_claim_deadline_then_escalates(
    rt, gateway, city, clock
):
    resident = Phone(rt, gateway, RESIDENT)
    worker = Phone(rt, gateway, WORKER_A)
    resident.text("路灯不亮")
    code = _case(rt).code
    worker.text(f"{code} 办结 已报修")
    clock.advance(hours=1)
    resident.text("不满意，还是不亮")
    case = _case(rt)
    assert (case.status, case.level) == ("open", "grid")
    # Half of the policy's 30 minutes (reopen_claim_within defaults to claim_within / 2).
    assert case.claim_due_at == clock.now + timedelta(minutes=15)
    assert case.escalate_due_at == clock.now + timedelta(minutes=45)
    assert any("还是不亮" in b for b in worker.inbox())
    # The shorter deadline is the one that fires.
    clock.advance(minutes=15, seconds=1)
    run_once(rt, gateway)
    assert any("超时未签收" in b and f"#{code}" in b for b in gateway.to(TOWN_OFFICE))

    worker.text(f"{code} 收到")
    worker.text(f"{code} 办结 已更换灯杆")
    resident.text("2")
    case = _case(rt)
    assert (case.status, case.level) == ("open", "town")
    kinds = _kinds(rt)
    assert kinds.count("reopened") == 2 and kinds[-1] == "escalated"
    with rt.sessions() as s:
        event = s.scalar(select(CaseEvent).where(CaseEvent.kind == "escalated"))
        assert event.detail["reason"] == "resident not satisfied a second time"
    assert any(f"#{code}" in b and "上报" in b for b in gateway.to(TOWN_OFFICE))


def test_satisfied_closes(rt, gateway, city, clock):
    resident = Phone(rt, gateway, RESIDENT)
    resident.text("噪音扰民")
    code = _case(rt).code
    Phone(rt, gateway, WORKER_A).text(f"{code} 办结 已劝导")
    resident.text("1")
    case = _case(rt)
    assert (case.status, case.rating) == ("closed", 1)
