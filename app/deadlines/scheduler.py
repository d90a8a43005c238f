"""The durable, exact step scheduler.

Deadline steps are rows (`scheduled_steps`) with an indexed due time. A worker
takes a batch of due steps with a *lease*, committed on its own, then fires
each leased step in its own transaction:

- Leasing is one statement. On PostgreSQL the due rows are picked with
  `FOR UPDATE SKIP LOCKED` inside a `MATERIALIZED` CTE, so concurrent workers
  take disjoint batches without waiting for each other, and the planner cannot
  inline the CTE into the `UPDATE` (an inlined `LIMIT … SKIP LOCKED` subquery
  may be evaluated more than once and lease more rows than asked). SQLite
  ignores `FOR UPDATE`; its `BEGIN IMMEDIATE` serialises writers, and one
  worker runs there.
- Firing locks the case, then the step (the order every other writer of a
  case uses, so the two cannot deadlock), and does the work only if the step
  is still undone and still carries the lease token this worker was given.
  The step's effects (timeline event, outbox rows, new steps) and its
  `done_at` commit together: a worker killed mid-step leaves nothing half done.
- A worker killed between steps leaves the rest of its batch leased; once
  `lease_until` passes, any worker leases them again (`lease_token` goes up,
  which fences the old worker out should it come back).

Time is a parameter: every function takes `now`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.context import Ctx
from app.db import unit_of_work
from app.deadlines import steps as deadlines
from app.models.cases import Case
from app.models.deadlines import ScheduledStep
from app.runtime import Runtime

log = logging.getLogger("gridline.scheduler")

# A step that raised this many times in a row is given up (outcome `failed`)
# rather than retried forever.
MAX_STEP_ATTEMPTS = 3

# Called inside a step's transaction after it fired, before the commit
# (tests use it to kill a worker at the worst moment, the benchmark to time steps).
FiredHook = Callable[[ScheduledStep, str], None]


@dataclass(frozen=True)
class Lease:
    step_id: int
    case_id: int
    token: int
    due_at: datetime


def lease_statement(*, now: datetime, lease: timedelta, limit: int) -> Any:
    """`WITH due AS MATERIALIZED (SELECT … FOR UPDATE SKIP LOCKED) UPDATE … RETURNING`."""
    due = (
        select(ScheduledStep.id)
        .where(
            ScheduledStep.done_at.is_(None),
            ScheduledStep.due_at <= now,
            or_(ScheduledStep.lease_until.is_(None), ScheduledStep.lease_until < now),
        )
        .order_by(ScheduledStep.due_at, ScheduledStep.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    return (
        update(ScheduledStep)
        .where(ScheduledStep.id.in_(select(due.c.id)))
        .values(lease_until=now + lease, lease_token=ScheduledStep.lease_token + 1)
        .returning(
            ScheduledStep.id, ScheduledStep.case_id, ScheduledStep.lease_token, ScheduledStep.due_at
        )
    )


def lease_due(session: Session, *, now: datetime, lease: timedelta, limit: int) -> list[Lease]:
    """Lease up to `limit` due steps (earliest first) until `now + lease`."""
    stmt = lease_statement(now=now, lease=lease, limit=limit)
    rows = session.execute(stmt, execution_options={"synchronize_session": False}).all()
    leases = [Lease(step_id=r[0], case_id=r[1], token=r[2], due_at=r[3]) for r in rows]
    return sorted(leases, key=lambda x: (x.due_at, x.step_id))


def fire_leased(rt: Runtime, lease: Lease, *, now: datetime, hook: FiredHook | None = None) -> str:
    """Fire one leased step in its own transaction; returns the outcome.

    `fired`/`skipped` (see `deadlines.fire`), `stale` when the step was done
    or leased again by another worker meanwhile, `failed`/`retry` when it raised.
    """
    try:
        with unit_of_work(rt.sessions) as session:
            # The case first, then the step: the order of every other writer of a case.
            if session.get_bind().dialect.name == "postgresql":
                session.execute(select(Case.id).where(Case.id == lease.case_id).with_for_update())
            step = session.get(
                ScheduledStep, lease.step_id, with_for_update=True, populate_existing=True
            )
            if step is None or step.done_at is not None or step.lease_token != lease.token:
                return "stale"
            outcome = deadlines.fire(Ctx(session=session, rt=rt, now=now), step)
            step.lease_until = None
            if hook is not None:
                hook(step, outcome)
            return outcome
    except Exception:
        log.exception("step %s (case %s) failed", lease.step_id, lease.case_id)
        return _after_error(rt, lease, now=now)


def _after_error(rt: Runtime, lease: Lease, *, now: datetime) -> str:
    with unit_of_work(rt.sessions) as session:
        step = session.get(ScheduledStep, lease.step_id, with_for_update=True)
        if step is None or step.done_at is not None or step.lease_token != lease.token:
            return "stale"
        if step.lease_token >= MAX_STEP_ATTEMPTS:
            step.done_at = now
            step.outcome = "failed"
            return "failed"
        # Free it for the next pass (or another worker) at once.
        step.lease_until = None
        return "retry"


def run_due(
    rt: Runtime,
    *,
    now: datetime,
    limit: int = 1000,
    batch: int | None = None,
    hook: FiredHook | None = None,
) -> dict[str, int]:
    """Lease and fire due steps until none is left or `limit` were handled.

    Returns counts by outcome. Several workers may run this at once.
    """
    size = batch or rt.settings.step_batch_size
    lease = timedelta(seconds=rt.settings.step_lease_seconds)
    counts: dict[str, int] = {}
    handled = 0
    while handled < limit:
        with unit_of_work(rt.sessions) as session:
            leases = lease_due(session, now=now, lease=lease, limit=min(size, limit - handled))
        if not leases:
            break
        for leased in leases:
            outcome = fire_leased(rt, leased, now=now, hook=hook)
            counts[outcome] = counts.get(outcome, 0) + 1
        handled += len(leases)
    return counts
