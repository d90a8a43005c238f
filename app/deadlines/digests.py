"""Daily jobs: each office's digest of its overdue cases, each town's roster gaps.

A job runs once per local day however many workers try: the first to insert
its `PeriodicRun` row (a unique job + day) writes the SMS in the same
transaction; the others' inserts do nothing and they move on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.context import Ctx
from app.db import unit_of_work
from app.delivery.send import send
from app.directory import lookups as directory
from app.directory import rosters
from app.models.cases import Case
from app.models.deadlines import PeriodicRun
from app.models.directory import Member, Region, RosterOverride, Shift
from app.runtime import Runtime
from routing.duty import describe_gaps
from sms.templates import word

log = logging.getLogger("gridline.digests")

DIGEST_JOB = "overdue_digest"
ROSTER_GAP_JOB = "roster_gap"
# Codes listed in one digest SMS; the count says how many there are in all.
MAX_CODES = 12


def claim_run(session: Session, *, job: str, period: str, now: datetime) -> int | None:
    """Insert the run's row unless it exists; its id when this caller won."""
    values: dict[str, Any] = {"job": job, "period": period, "at": now, "sent": 0}
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = pg_insert(PeriodicRun).values(values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite_insert(PeriodicRun).values(values).on_conflict_do_nothing()
    else:  # pragma: no cover - other dialects are not supported targets
        stmt = insert(PeriodicRun).values(values)
    return session.execute(stmt.returning(PeriodicRun.id)).scalar()


def overdue_clause(now: datetime) -> Any:
    """Live cases past a deadline: unclaimed past the claim deadline, or
    not resolved by the resolution deadline."""
    return or_(
        and_(Case.status == "open", Case.claim_due_at < now),
        and_(Case.status.in_(("open", "claimed")), Case.resolve_due_at < now),
    )


def overdue_cases(session: Session, office: Region, *, now: datetime) -> list[Case]:
    column = Case.town_id if office.level == "town" else Case.county_id
    return list(
        session.scalars(
            select(Case)
            .where(column == office.id, overdue_clause(now))
            .order_by(Case.resolve_due_at, Case.id)
        )
    )


def offices(session: Session) -> list[Region]:
    """Town and county-level regions that have duty phones."""
    with_members = select(Member.unit_id).where(Member.active.is_(True))
    return list(
        session.scalars(
            select(Region)
            .where(Region.level.in_(("town", "county")), Region.id.in_(with_members))
            .order_by(Region.id)
        )
    )


def send_overdue_digests(ctx: Ctx) -> int:
    """Text each office's duty phones the list of its overdue cases; returns SMS written."""
    sent = 0
    day = ctx.now.astimezone(ctx.rt.settings.tz).date().isoformat()
    for office in offices(ctx.session):
        overdue = overdue_cases(ctx.session, office, now=ctx.now)
        if not overdue:
            continue
        codes = " ".join(f"#{c.code}" for c in overdue[:MAX_CODES])
        if len(overdue) > MAX_CODES:
            codes += " …"
        members, _ = rosters.on_duty(ctx.session, office, now=ctx.now, tz=ctx.rt.settings.tz)
        for member in members:
            send(
                ctx, None, member.phone, "overdue_digest", day=day, count=len(overdue), codes=codes
            )
            sent += 1
        log.info("overdue digest for %s: %d cases", office.code, len(overdue))
    return sent


DailyJob = tuple[str, Any]


def run_daily(rt: Runtime, *, now: datetime) -> int:
    """Run today's daily jobs that are due and not yet run; returns SMS written."""
    local = now.astimezone(rt.settings.tz)
    # The jobs are a morning snapshot: they run in the hour from `digest_hour`.
    # A day on which no worker ran then is skipped; the next day's digest still
    # lists every case that is overdue.
    if local.hour != rt.settings.digest_hour:
        return 0
    period = local.date().isoformat()
    # Jobs this process saw done: no write per pass once today's run exists.
    done = rt.caches.setdefault("daily_jobs_done", set())
    assert isinstance(done, set)
    total = 0
    for job, action in daily_jobs():
        if (job, period) in done:
            continue
        with unit_of_work(rt.sessions) as session:
            run_id = claim_run(session, job=job, period=period, now=now)
            sent = 0
            if run_id is not None:
                sent = action(Ctx(session=session, rt=rt, now=now))
                row = session.get(PeriodicRun, run_id)
                if row is not None:
                    row.sent = sent
        # Only once committed (by this process or another) is the run done.
        done.add((job, period))
        total += sent
    return total


def daily_jobs() -> list[DailyJob]:
    return [(DIGEST_JOB, send_overdue_digests), (ROSTER_GAP_JOB, send_roster_gap_notices)]


__all__ = ["claim_run", "overdue_cases", "run_daily", "send_overdue_digests"]


# ---------------------------------------------------------------- roster gaps


def send_roster_gap_notices(ctx: Ctx) -> int:
    """Daily: each town office is texted the gaps of today's rosters of its grids.

    Only grids that keep a roster are checked; a grid without one is served
    by its whole team by design. Returns the SMS written.
    """
    tz = ctx.rt.settings.tz
    day = ctx.now.astimezone(tz).date()
    rostered = select(Shift.unit_id).union(select(RosterOverride.unit_id))
    grids = ctx.session.scalars(
        select(Region).where(Region.level == "grid", Region.id.in_(rostered)).order_by(Region.code)
    )
    towns: dict[int, Region] = {}
    items: dict[int, list[str]] = defaultdict(list)
    for grid in grids:
        found = rosters.grid_gaps(ctx.session, grid, day=day, tz=tz)
        town = directory.ancestor_at(grid, "town")
        if not found or town is None:
            continue
        towns[town.id] = town
        items[town.id].append(f"{grid.code} {describe_gaps(found)}")
    sent = 0
    sep = word("sep", ctx.locale)
    for town_id, town in towns.items():
        members, _ = rosters.on_duty(ctx.session, town, now=ctx.now, tz=tz)
        text = sep.join(items[town_id])
        for member in members:
            send(ctx, None, member.phone, "roster_gap", day=day.isoformat(), items=text)
            sent += 1
    return sent
