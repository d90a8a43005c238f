"""The scheduler is exact under many worker processes and survives killed workers.

Workers are real processes (tests/deadlines/worker_proc.py) running the
step-firing loop against the same database with a fixed `now`.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.models.cases import Case, CaseEvent
from app.models.deadlines import ScheduledStep
from app.models.messages import OutboundMessage
from app.runtime import Runtime
from tests.deadlines.conftest import open_cases
from tests.deadlines.procs import run_workers
from tests.deadlines.worker_proc import CRASH_EXIT
from tests.factories import COUNTY_OFFICE, TOWN_OFFICE, make_city

pytestmark = pytest.mark.slow


def _events(rt: Runtime, kind: str) -> Counter[int]:
    with rt.sessions() as s:
        return Counter(s.scalars(select(CaseEvent.case_id).where(CaseEvent.kind == kind)))


def _notices(rt: Runtime, template: str, to: str) -> Counter[int | None]:
    with rt.sessions() as s:
        return Counter(
            s.scalars(
                select(OutboundMessage.case_id).where(
                    OutboundMessage.template == template, OutboundMessage.to_phone == to
                )
            )
        )


def test_three_worker_processes_fire_1000_due_steps_exactly_once(pg_rt, clock):
    rt = pg_rt
    from app.db import unit_of_work

    with unit_of_work(rt.sessions) as session:
        make_city(session)
    opened = clock.now
    ids = open_cases(rt, 1000, now=opened)
    # 31 minutes on: each case's claim deadline (30 m) is due, nothing else.
    due = opened + timedelta(minutes=31)

    finished = run_workers(rt.settings.database_url, due, count=3, batch=10)

    for f in finished:
        assert f.returncode == 0, f.stderr[-2000:]
        assert "Traceback" not in f.stderr, f.stderr[-2000:]
    results = [f.result for f in finished]
    assert sum(r.get("fired", 0) for r in results) == 1000, results
    assert all(set(r) == {"fired"} for r in results), results
    # All three took part (disjoint leases, no waiting on each other's locks).
    assert sum(1 for r in results if r.get("fired")) >= 2, results
    # Every case: exactly one claim_overdue event and one notice to the town office.
    assert _events(rt, "claim_overdue") == Counter({i: 1 for i in ids})
    assert _notices(rt, "claim_overdue", TOWN_OFFICE) == Counter({i: 1 for i in ids})
    with rt.sessions() as s:
        outcomes = Counter(
            s.execute(
                select(ScheduledStep.kind, ScheduledStep.outcome).where(ScheduledStep.due_at <= due)
            ).all()
        )
        assert outcomes == Counter({("claim_overdue", "fired"): 1000})
        # The later deadlines are untouched and not leased.
        assert (
            s.scalar(
                select(func.count()).where(
                    ScheduledStep.done_at.is_(None), ScheduledStep.lease_until.is_not(None)
                )
            )
            == 0
        )


@pytest.mark.parametrize(
    ("fire_batch", "committed"),
    [
        (1, 5),  # each step in a transaction of its own: the 5 before are kept
        (4, 4),  # four to a transaction: the first four are, the 5th died with the 6th
        (20, 0),  # the whole lease in one transaction: none is
    ],
)
def test_a_killed_worker_leaves_no_half_done_step_and_its_lease_is_recovered(
    rt, city, clock, fire_batch, committed
):
    opened = clock.now
    ids = open_cases(rt, 50, now=opened)
    due = opened + timedelta(minutes=61)  # claim_overdue and escalate of each case are due
    with rt.sessions() as s:
        s.execute(
            ScheduledStep.__table__.update()
            .where(ScheduledStep.kind == "claim_overdue")
            .values(done_at=opened, outcome="cancelled")
        )
        s.commit()

    # It leases a batch of 20, fires 5, and dies inside the 6th step, before the
    # commit of its transaction: the steps of the transactions committed before
    # are done, the rest not at all.
    [crashed] = run_workers(
        rt.settings.database_url, due, batch=20, fire_batch=fire_batch, crash_after=5
    )
    assert crashed.returncode == CRASH_EXIT, crashed.stderr[-2000:]

    escalated = _events(rt, "escalated")
    assert sum(escalated.values()) == committed and set(escalated.values()) <= {1}
    with rt.sessions() as s:
        done = set(
            s.scalars(
                select(ScheduledStep.case_id).where(
                    ScheduledStep.kind == "escalate", ScheduledStep.outcome == "fired"
                )
            )
        )
        assert done == set(escalated)
        # Nothing of the step it died in (nor of any other) was kept: every case
        # not fired is still at the grid, open, and its county office was not texted.
        for case in s.scalars(select(Case).where(Case.id.not_in(done))):
            assert (case.level, case.status) == ("grid", "open")
        leased = s.scalar(
            select(func.count()).where(
                ScheduledStep.done_at.is_(None), ScheduledStep.lease_until.is_not(None)
            )
        )
        assert leased == 20 - committed
    assert set(_notices(rt, "escalated_notice", COUNTY_OFFICE)) == done

    # A worker at the same moment fires the 30 never leased, not the 15 still leased.
    [same_time] = run_workers(rt.settings.database_url, due)
    assert same_time.result == {"fired": 30}
    # Once the dead worker's lease has run out, they are recovered and fired once.
    later = due + timedelta(seconds=rt.settings.step_lease_seconds + 1)
    [recovered] = run_workers(rt.settings.database_url, later)
    assert recovered.result == {"fired": 20 - committed}
    assert _events(rt, "escalated") == Counter({i: 1 for i in ids})
    assert _notices(rt, "escalated_notice", COUNTY_OFFICE) == Counter({i: 1 for i in ids})


def test_deadlines_missed_while_everything_was_down_fire_once_on_start(rt, city, clock):
    opened = clock.now
    ids = open_cases(rt, 20, now=opened)
    # Every process was down for three hours; two workers start at once.
    start = opened + timedelta(hours=3)
    finished = run_workers(rt.settings.database_url, start, count=2 if _pg(rt) else 1)
    assert all(f.returncode == 0 for f in finished), [f.stderr[-2000:] for f in finished]
    assert _events(rt, "claim_overdue") == Counter({i: 1 for i in ids})
    assert _events(rt, "escalated") == Counter({i: 1 for i in ids})
    # A second start finds nothing left to do.
    [again] = run_workers(rt.settings.database_url, start + timedelta(seconds=1))
    assert again.result == {}
    with rt.sessions() as s:
        assert {c.level for c in s.scalars(select(Case))} == {"county"}


def test_the_lease_is_one_statement_with_a_materialized_skip_locked_cte():
    from sqlalchemy.dialects import postgresql

    from app.deadlines.scheduler import lease_statement

    stmt = lease_statement(now=datetime.now(UTC), lease=timedelta(minutes=1), limit=10)
    sql = " ".join(str(stmt.compile(dialect=postgresql.dialect())).split())
    assert sql.startswith("WITH due AS MATERIALIZED (SELECT scheduled_steps.id")
    assert "FOR UPDATE SKIP LOCKED) UPDATE scheduled_steps SET lease_until" in sql
    assert sql.endswith(
        "RETURNING scheduled_steps.id, scheduled_steps.case_id, "
        "scheduled_steps.lease_token, scheduled_steps.due_at"
    )


def _pg(rt: Runtime) -> bool:
    return rt.engine.dialect.name == "postgresql"


def test_a_step_that_raises_costs_only_itself(rt, city, clock):
    """A step that raises rolls back the transaction it was fired in (a batch):
    the batch's steps are fired again one by one, each in its own transaction;
    the bad one is retried, then given up; the others fire once."""
    from app.deadlines.scheduler import MAX_STEP_ATTEMPTS, run_due

    opened = clock.now
    ids = open_cases(rt, 12, now=opened)
    due = opened + timedelta(minutes=31)  # each case's claim deadline
    bad_case = ids[5]
    calls: Counter[int] = Counter()

    def hook(step: ScheduledStep, outcome: str) -> None:
        calls[step.case_id] += 1
        if step.case_id == bad_case:
            raise RuntimeError("this step always fails")

    assert rt.settings.step_fire_batch >= 12  # the lease is fired as one batch
    counts = run_due(rt, now=due, batch=12, hook=hook)
    # The bad one is freed after each failure, leased again, and given up
    # after MAX_STEP_ATTEMPTS leases.
    assert counts == {"fired": 11, "retry": MAX_STEP_ATTEMPTS - 1, "failed": 1}
    # The steps before the bad one ran in the batch, rolled back, then alone;
    # those after it only alone; the bad one in the batch and once per lease alone.
    assert (calls[ids[0]], calls[ids[-1]]) == (2, 1)
    assert calls[bad_case] == 1 + MAX_STEP_ATTEMPTS
    assert _events(rt, "claim_overdue") == Counter({i: 1 for i in ids if i != bad_case})
    assert _notices(rt, "claim_overdue", TOWN_OFFICE) == Counter(
        {i: 1 for i in ids if i != bad_case}
    )
    with rt.sessions() as s:
        step = s.scalars(
            select(ScheduledStep).where(
                ScheduledStep.case_id == bad_case, ScheduledStep.kind == "claim_overdue"
            )
        ).one()
        assert step.outcome == "failed"
    assert _events(rt, "claim_overdue")[bad_case] == 0


def test_cancel_reaches_a_step_scheduled_earlier_in_the_same_transaction(rt, city, clock):
    """Without autoflush, a step scheduled and then cancelled in one transaction
    must not be written as still due."""
    from app.cases import changes as cases
    from app.context import Ctx
    from app.db import unit_of_work

    [case_id] = open_cases(rt, 1, now=clock.now)
    with unit_of_work(rt.sessions) as session:
        ctx = Ctx(session=session, rt=rt, now=clock.now)
        case = session.get(Case, case_id)
        assert case is not None
        with session.no_autoflush:
            cases.schedule(ctx, case, "resend", clock.now + timedelta(hours=1))
            cases.cancel_steps(ctx, case, "resend")
    with rt.sessions() as s:
        step = s.scalars(
            select(ScheduledStep).where(
                ScheduledStep.case_id == case_id, ScheduledStep.kind == "resend"
            )
        ).one()
        assert (step.outcome, step.done_at) == ("cancelled", clock.now)
