"""`GET /api/v1/stats`: the figures the Zhoushan programme reports, for the office's area."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from app.api.deps import AUTH_ERRORS, CallerDep
from app.api.schemas import IsoTime
from app.deps import RuntimeDep, SessionDep
from app.directory.offices import Office, case_filter
from app.errors import Unprocessable
from app.models.cases import CASE_LEVELS, CASE_STATUSES, Case, CaseEvent
from app.models.directory import Region

router = APIRouter(prefix="/api/v1", tags=["stats"])

GroupBy = Literal["town", "grid", "category"]
DEFAULT_WINDOW = timedelta(days=30)


class Durations(BaseModel):
    count: int = Field(description="cases that reached the milestone")
    median_seconds: float | None
    p90_seconds: float | None


class Figures(BaseModel):
    cases: int
    by_status: dict[str, int]
    by_level: dict[str, int]
    solved: int = Field(description="resolved or closed")
    resolution_rate: float | None = Field(description="solved / cases")
    rated: int
    satisfaction_rate: float | None = Field(description="satisfied / rated")
    overdue: int = Field(description="past the resolution deadline, unsolved or solved late")
    time_to_claim: Durations = Field(description="from opening to the first claim or assignment")
    time_to_resolve: Durations = Field(description="from opening to resolution")


class Group(Figures):
    key: str | None = Field(
        description="town or grid code, or the category; null: unplaced or uncategorised"
    )


class StatsOut(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    group_by: GroupBy | None
    total: Figures
    groups: list[Group]


@dataclass(frozen=True)
class Row:
    status: str
    level: str
    town: str | None
    grid: str | None
    category: str | None
    created_at: datetime
    first_claim_at: datetime | None
    resolved_at: datetime | None
    resolve_due_at: datetime | None
    rating: int | None
    county: str | None = None


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (the value itself, no interpolation)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _durations(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "median_seconds": percentile(values, 50),
        "p90_seconds": percentile(values, 90),
    }


def is_overdue(r: Row, *, now: datetime) -> bool:
    """Past the resolution deadline: unsolved at `now`, or solved late."""
    if r.resolve_due_at is None:
        return False
    if r.resolved_at is None:
        return r.status in ("open", "claimed") and r.resolve_due_at < now
    return r.resolved_at > r.resolve_due_at


def figures(rows: list[Row], *, now: datetime) -> dict[str, Any]:
    statuses = Counter(r.status for r in rows)
    levels = Counter(r.level for r in rows)
    solved = statuses["resolved"] + statuses["closed"]
    rated = [r.rating for r in rows if r.rating is not None]
    overdue = sum(1 for r in rows if is_overdue(r, now=now))
    claims = [(r.first_claim_at - r.created_at).total_seconds() for r in rows if r.first_claim_at]
    resolves = [(r.resolved_at - r.created_at).total_seconds() for r in rows if r.resolved_at]
    return {
        "cases": len(rows),
        "by_status": {s: statuses[s] for s in CASE_STATUSES},
        "by_level": {level: levels[level] for level in CASE_LEVELS},
        "solved": solved,
        "resolution_rate": round(solved / len(rows), 4) if rows else None,
        "rated": len(rated),
        "satisfaction_rate": round(rated.count(1) / len(rated), 4) if rated else None,
        "overdue": overdue,
        "time_to_claim": _durations(claims),
        "time_to_resolve": _durations(resolves),
    }


def case_rows(session: Session, office: Office, *, start: datetime, end: datetime) -> list[Row]:
    """The cases opened in [start, end) that `office` may see, as `Row`s for `figures`.

    Shared by the API and the console's statistics, map and reports.
    """
    grid, town, county = aliased(Region), aliased(Region), aliased(Region)
    first_claim = (
        select(CaseEvent.case_id, func.min(CaseEvent.at).label("at"))
        .where(CaseEvent.kind.in_(("claimed", "assigned")))
        .group_by(CaseEvent.case_id)
        .subquery()
    )
    stmt = (
        select(
            Case.status,
            Case.level,
            town.code,
            grid.code,
            Case.category,
            Case.created_at,
            first_claim.c.at,
            Case.resolved_at,
            Case.resolve_due_at,
            Case.rating,
            county.code,
        )
        .outerjoin(grid, grid.id == Case.grid_id)
        .outerjoin(town, town.id == Case.town_id)
        .outerjoin(county, county.id == Case.county_id)
        .outerjoin(first_claim, first_claim.c.case_id == Case.id)
        .where(case_filter(office), Case.created_at >= start, Case.created_at < end)
    )
    return [Row(*values) for values in session.execute(stmt)]


@router.get("/stats", response_model=StatsOut, responses=AUTH_ERRORS, response_model_by_alias=True)
def stats(
    caller: CallerDep,
    session: SessionDep,
    rt: RuntimeDep,
    from_: Annotated[
        IsoTime | None,
        Query(alias="from", description="cases opened at or after (default: `to` − 30 days)"),
    ] = None,
    to: Annotated[IsoTime | None, Query(description="cases opened before (default: now)")] = None,
    group_by: GroupBy | None = None,
) -> dict[str, Any]:
    """Cases opened in [from, to) in the office's area: counts by status and level,
    median and p90 time to claim and to resolve, resolution and satisfaction rates,
    overdue count; overall and per town, grid or category (null: uncategorised)."""
    now = rt.clock()
    end = to or now
    start = from_ or end - DEFAULT_WINDOW
    if start >= end:
        raise Unprocessable("`from` must be before `to`")
    rows = case_rows(session, caller.office, start=start, end=end)
    groups: list[dict[str, Any]] = []
    if group_by is not None:
        by_key: dict[str | None, list[Row]] = {}
        for row in rows:
            key = {"town": row.town, "grid": row.grid, "category": row.category}[group_by]
            by_key.setdefault(key, []).append(row)
        for key in sorted(by_key, key=lambda k: (k is None, k or "")):
            groups.append({"key": key, **figures(by_key[key], now=now)})
    return {
        "from": start,
        "to": end,
        "group_by": group_by,
        "total": figures(rows, now=now),
        "groups": groups,
    }
