"""A batch (the memo on) queues its case events and deadline steps and writes
them at its end in one statement per table; readers inside the batch see the
queued rows, and what is written is what the ORM would have written."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app import memo
from app.cases import changes as cases
from app.cases.changes import Actor, Ctx
from app.db import unit_of_work
from app.deadlines import ladder
from app.models.cases import Case, CaseEvent
from app.models.deadlines import ScheduledStep
from app.runtime import Runtime
from tests.conftest import Clock


def _case(rt: Runtime, clock: Clock) -> int:
    with unit_of_work(rt.sessions) as session:
        case = Case(
            code="4321",
            open_code="4321",
            status="resolved",
            resident_phone="+8613700004321",
            summary="楼道灯坏了",
            created_at=clock.now,
            updated_at=clock.now,
        )
        session.add(case)
        session.flush()
        return case.id


def test_events_and_steps_are_queued_then_written_as_given(rt: Runtime, clock: Clock) -> None:
    case_id = _case(rt, clock)
    shanghai = ZoneInfo("Asia/Shanghai")
    due = (clock.now + timedelta(hours=4)).astimezone(shanghai)  # not UTC on purpose
    with unit_of_work(rt.sessions) as session:
        memo.enable(session)
        ctx = Ctx(session=session, rt=rt, now=clock.now)
        case = session.get(Case, case_id)
        assert case is not None
        resident = Actor.sms(case.resident_phone)
        cases.record(ctx, case, "reopened", resident, comment="还没修好，灯还是不亮")
        cases.record(ctx, case, "reopened", Actor.system())  # not the resident's
        cases.schedule(ctx, case, "claim_overdue", due)
        # Nothing is written yet, and the batch's readers count what is queued.
        assert session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)).all() == []
        assert session.scalars(select(ScheduledStep)).all() == []
        assert ladder.times_reopened(ctx, case) == 1
        assert memo.flush_deferred(session) == 3
        assert ladder.times_reopened(ctx, case) == 1  # now from the table, not twice
    with rt.sessions() as s:
        events = s.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        ).all()
        assert [(e.kind, e.actor, e.channel) for e in events] == [
            ("reopened", resident.name, resident.channel),
            ("reopened", "system", Actor.system().channel),
        ]
        assert events[0].detail == {"comment": "还没修好，灯还是不亮"}
        assert events[0].at == clock.now
        [step] = s.scalars(select(ScheduledStep)).all()
        assert (step.case_id, step.kind, step.done_at, step.outcome) == (
            case_id,
            "claim_overdue",
            None,
            None,
        )
        assert step.due_at == due  # the same instant, read back in UTC
        assert step.lease_token == 0


def test_without_the_memo_events_and_steps_are_written_at_once(rt: Runtime, clock: Clock) -> None:
    case_id = _case(rt, clock)
    with unit_of_work(rt.sessions) as session:
        ctx = Ctx(session=session, rt=rt, now=clock.now)
        case = session.get(Case, case_id)
        assert case is not None
        cases.record(ctx, case, "reopened", Actor.sms(case.resident_phone))
        cases.schedule(ctx, case, "claim_overdue", clock.now + timedelta(hours=1))
        session.flush()
        assert len(session.scalars(select(CaseEvent)).all()) == 1
        assert len(session.scalars(select(ScheduledStep)).all()) == 1
        assert ladder.times_reopened(ctx, case) == 1
