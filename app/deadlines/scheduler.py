"""The durable, exact step scheduler.

Deadline steps are rows (`scheduled_steps`) with an indexed due time. A worker
takes a batch of due steps with a *lease*, committed on its own, then fires
them `step_fire_batch` (20) to a transaction (`fire_batch`; one alone:
`fire_leased`):

- Leasing is one statement. On PostgreSQL the due rows are picked with
  `FOR UPDATE SKIP LOCKED` inside a `MATERIALIZED` CTE, so concurrent workers
  take disjoint batches without waiting for each other, and the planner cannot
  inline the CTE into the `UPDATE` (an inlined `LIMIT … SKIP LOCKED` subquery
  may be evaluated more than once and lease more rows than asked). SQLite
  ignores `FOR UPDATE`; its `BEGIN IMMEDIATE` serialises writers, and one
  worker runs there.
- Firing locks the cases, then the steps (the order every other writer of a
  case uses, so the two cannot deadlock), and does the work only if a step
  is still undone and still carries the lease token this worker was given.
  A step's effects (timeline event, outbox rows, new steps) and its
  `done_at` commit together: a worker killed mid-step leaves nothing half done.
- Why batches: a claim deadline costs about 14 statements alone, 7 in a batch
  (its writes join the batch's multi-row INSERTs), and half the CPU; the
  10,000 steps due at once need that to fire within a minute (BENCHMARKS.md,
  "Scheduler at scale"). A batch that raises is rolled back and its steps
  are fired again one by one, so a bad step costs only itself.
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

from app.cases import lookups as case_lookups
from app.context import Ctx
from app.db import unit_of_work
from app.deadlines import steps as deadlines
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
            case = case_lookups.lock_by_id(session, lease.case_id)
            step = session.get(
                ScheduledStep, lease.step_id, with_for_update=True, populate_existing=True
            )
            if step is None or step.done_at is not None or step.lease_token != lease.token:
                return "stale"
            assert case is not None  # a step's case is never deleted
            outcome = deadlines.fire(Ctx(session=session, rt=rt, now=now), step, case)
            step.lease_until = None
            if hook is not None:
                hook(step, outcome)
            return outcome
    except Exception:
        log.exception("step %s (case %s) failed", lease.step_id, lease.case_id)
        return _after_error(rt, lease, now=now)


def fire_batch(
    rt: Runtime, leases: list[Lease], *, now: datetime, hook: FiredHook | None = None
) -> list[str] | None:
    """Fire several leased steps in one transaction; their outcomes, in order.

    The cases are locked together (`case_lookups.lock_many`, in id order), then
    the steps; each step is fired as `fire_leased` fires it, and everything
    commits at once or not at all, so a worker killed mid-batch leaves no step
    half done. The steps' reads do not flush the batch's writes (a second step
    of one case flushes the first's): its rows go out in a few multi-row
    statements at commit. Returns None when the batch raised and was rolled
    back; the caller then fires its steps one by one.
    """
    try:
        with unit_of_work(rt.sessions) as session:
            cases = case_lookups.lock_many(session, [lease.case_id for lease in leases])
            steps = {
                step.id: step
                for step in session.scalars(
                    select(ScheduledStep)
                    .where(ScheduledStep.id.in_([lease.step_id for lease in leases]))
                    .order_by(ScheduledStep.id)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
            }
            ctx = Ctx(session=session, rt=rt, now=now)
            outcomes: list[str] = []
            seen: set[int] = set()
            for lease in leases:
                step = steps.get(lease.step_id)
                if step is None or step.done_at is not None or step.lease_token != lease.token:
                    outcomes.append("stale")
                    continue
                if lease.case_id in seen:
                    session.flush()
                seen.add(lease.case_id)
                with session.no_autoflush:
                    outcome = deadlines.fire(ctx, step, cases[lease.case_id])
                step.lease_until = None
                if hook is not None:
                    hook(step, outcome)
                outcomes.append(outcome)
            return outcomes
    except Exception:
        log.warning(
            "a batch of %d steps failed; firing them one by one", len(leases), exc_info=True
        )
        return None


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
        per_tx = rt.settings.step_fire_batch
        for start in range(0, len(leases), per_tx):
            chunk = leases[start : start + per_tx]
            outcomes = fire_batch(rt, chunk, now=now, hook=hook) if len(chunk) > 1 else None
            if outcomes is None:
                outcomes = [fire_leased(rt, leased, now=now, hook=hook) for leased in chunk]
            for outcome in outcomes:
                counts[outcome] = counts.get(outcome, 0) + 1
        handled += len(leases)
    return counts
