"""The numbers behind the console's map and statistics pages.

Every figure comes from `app.api.stats.case_rows` (the API's own query, so
the console and `GET /api/v1/stats` cannot disagree), filtered by the office's
visibility (`case_filter`), and from `figures` / `is_overdue` / `percentile`.
Periods are whole local days in the configured zone.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.api.stats import Row, case_rows, figures, is_overdue, percentile
from app.console.areas import CHILD_LEVEL, Tree, Unit
from app.directory.offices import Office, case_filter
from app.errors import Unprocessable
from app.models.cases import ACTIVE_STATUSES, Case
from app.models.directory import Resident

MAX_DAYS = 366
MAP_WINDOWS = (7, 30, 90)
METRICS = ("open", "overdue", "new")

# ---------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """Local days first..last (inclusive), and the UTC instants [start, end)."""

    first: date
    last: date
    start: datetime
    end: datetime

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    @property
    def whole_month(self) -> str | None:
        """`2026-11` when the period is exactly one calendar month."""
        if self.first.day != 1 or (self.last + timedelta(days=1)).day != 1:
            return None
        if (self.first.year, self.first.month) != (self.last.year, self.last.month):
            return None
        return f"{self.first:%Y-%m}"


FIRST_YEAR, LAST_YEAR = 1970, 9998  # beyond these, time zone arithmetic overflows


def _day(text: str, name: str) -> date:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise Unprocessable(f"`{name}` must be a date written YYYY-MM-DD, not {text!r}") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise Unprocessable(f"`{name}` must be between {FIRST_YEAR} and {LAST_YEAR}")
    return day


def period_of(first: date, last: date, *, tz: tzinfo) -> Period:
    start = datetime.combine(first, time(), tz)
    end = datetime.combine(last + timedelta(days=1), time(), tz)
    return Period(first=first, last=last, start=start, end=end)


def parse_period(
    from_: str | None,
    to: str | None,
    month: str | None,
    *,
    now: datetime,
    tz: tzinfo,
    default_days: int = 30,
) -> Period:
    """The period a page's URL asks for: `month=2026-11`, or `from`/`to` dates
    (inclusive), or the last `default_days` days up to today."""
    today = now.astimezone(tz).date()
    if month:
        found = re.fullmatch(r"(\d{4})-(\d{2})", month)
        if not found or not 1 <= int(found.group(2)) <= 12:
            raise Unprocessable(f"`month` must be written YYYY-MM, not {month!r}")
        if not FIRST_YEAR <= int(found.group(1)) <= LAST_YEAR:
            raise Unprocessable(f"`month` must be between {FIRST_YEAR} and {LAST_YEAR}")
        first = date(int(found.group(1)), int(found.group(2)), 1)
        after = (first + timedelta(days=32)).replace(day=1)
        return period_of(first, after - timedelta(days=1), tz=tz)
    last = _day(to, "to") if to else today
    first = _day(from_, "from") if from_ else last - timedelta(days=default_days - 1)
    if first > last:
        raise Unprocessable("`from` must not be after `to`")
    if (last - first).days + 1 > MAX_DAYS:
        raise Unprocessable(f"a period is at most {MAX_DAYS} days")
    return period_of(first, last, tz=tz)


def window_period(days: int, *, now: datetime, tz: tzinfo) -> Period:
    """The last `days` local days, today included."""
    if not 1 <= days <= MAX_DAYS:
        raise Unprocessable(f"`days` must be between 1 and {MAX_DAYS}")
    today = now.astimezone(tz).date()
    return period_of(today - timedelta(days=days - 1), today, tz=tz)


# ---------------------------------------------------------------- the map


@dataclass
class AreaFigures:
    """One unit of the map: its cases of the window and its households."""

    unit: Unit
    new: int = 0
    open: int = 0
    overdue: int = 0
    households: int = 0
    has_shape: bool = False

    def count(self, metric: str) -> int:
        return int(getattr(self, metric))

    def value(self, metric: str, *, per_households: bool) -> float | None:
        if not per_households:
            return float(self.count(metric))
        if not self.households:
            return None
        return round(self.count(metric) * 1000 / self.households, 2)


@dataclass
class MapFigures:
    unit: Unit
    level: str  # of the areas drawn
    areas: list[AreaFigures]
    unplaced: int = 0  # cases of the window in the unit that no area holds (no grid yet)
    totals: AreaFigures | None = None


def _row_unit(row: Row, level: str) -> str | None:
    return {"county": row.county, "town": row.town, "grid": row.grid}[level]


def households_by_grid(session: Session, grid_ids: Iterable[int]) -> dict[int, int]:
    """Registered households (residents with a grid) per grid."""
    wanted = list(grid_ids)
    out: dict[int, int] = {}
    for chunk in range(0, len(wanted), 5000):
        ids = wanted[chunk : chunk + 5000]
        stmt = (
            select(Resident.grid_id, func.count(Resident.id))
            .where(Resident.grid_id.in_(ids))
            .group_by(Resident.grid_id)
        )
        out.update({gid: n for gid, n in session.execute(stmt) if gid is not None})
    return out


def map_figures(
    session: Session,
    office: Office,
    tree: Tree,
    unit: Unit,
    *,
    period: Period,
    now: datetime,
    shaped: set[int],
) -> MapFigures:
    """The figures of each area `unit`'s map draws (its towns, or its grids).

    `shaped`: ids of the grids that have a boundary; a town or county has one
    when any of its grids has.
    """
    level = CHILD_LEVEL[unit.level]
    children = tree.below(unit, level)
    grids_of = {c.code: tree.below(c, "grid") if level != "grid" else [c] for c in children}
    all_grids = [g for gs in grids_of.values() for g in gs]
    homes = households_by_grid(session, (g.id for g in all_grids))
    areas = {
        c.code: AreaFigures(
            unit=c,
            households=sum(homes.get(g.id, 0) for g in grids_of[c.code]),
            has_shape=any(g.id in shaped for g in grids_of[c.code]),
        )
        for c in children
    }
    totals = AreaFigures(unit=unit, households=sum(a.households for a in areas.values()))
    unplaced = 0
    for row in case_rows(session, office, start=period.start, end=period.end):
        if unit.level != "city" and _row_unit(row, unit.level) != unit.code:
            continue
        area = areas.get(_row_unit(row, level) or "")
        for target in (area, totals):
            if target is None:
                continue
            target.new += 1
            target.open += row.status in ACTIVE_STATUSES
            target.overdue += is_overdue(row, now=now)
        if area is None:
            unplaced += 1
    return MapFigures(
        unit=unit, level=level, areas=list(areas.values()), unplaced=unplaced, totals=totals
    )


def ranked(areas: list[AreaFigures], metric: str, *, per_households: bool) -> list[AreaFigures]:
    """Highest value first; areas without a value (no households) last; then by code."""

    def key(a: AreaFigures) -> tuple[bool, float, str]:
        v = a.value(metric, per_households=per_households)
        return (v is None, -(v or 0.0), a.unit.code)

    return sorted(areas, key=key)


# ---------------------------------------------------------------- statistics


@dataclass
class GroupTimes:
    unit: Unit | None  # None: cases not placed in any unit of the level
    cases: int
    solved: int
    resolve_median: float | None
    resolve_p90: float | None


@dataclass
class Bucket:
    first: date
    last: date
    rated: int = 0
    satisfied: int = 0

    @property
    def rate(self) -> float | None:
        return round(self.satisfied / self.rated, 4) if self.rated else None


@dataclass
class StatsReport:
    period: Period
    total: dict[str, Any]
    open: int
    daily: list[tuple[date, int, int]]  # day, new, resolved
    by_unit_level: str
    by_unit: list[GroupTimes]
    satisfaction: list[Bucket]
    categories: list[tuple[str | None, int]]
    rows: list[Row] = field(default_factory=list, repr=False)


def resolved_per_day(
    session: Session, office: Office, period: Period, *, tz: tzinfo
) -> Counter[date]:
    """Cases of the office's area resolved on each local day of the period
    (whenever they were opened; a case resolved twice counts on its last day)."""
    stmt = select(Case.resolved_at).where(
        case_filter(office), Case.resolved_at >= period.start, Case.resolved_at < period.end
    )
    return Counter(at.astimezone(tz).date() for at in session.scalars(stmt) if at is not None)


def weeks(period: Period) -> list[Bucket]:
    """Monday-to-Sunday weeks, the first and last clipped to the period."""
    out: list[Bucket] = []
    day = period.first
    while day <= period.last:
        end = min(period.last, day + timedelta(days=6 - day.weekday()))
        out.append(Bucket(first=day, last=end))
        day = end + timedelta(days=1)
    return out


def stats_report(
    session: Session,
    office: Office,
    tree: Tree,
    office_unit: Unit,
    *,
    period: Period,
    now: datetime,
    tz: tzinfo,
    top_categories: int = 10,
) -> StatsReport:
    rows = case_rows(session, office, start=period.start, end=period.end)
    total = figures(rows, now=now)
    opened = Counter(r.created_at.astimezone(tz).date() for r in rows)
    resolved = resolved_per_day(session, office, period, tz=tz)
    daily = [(d, opened[d], resolved[d]) for d in period.days]

    # Resolution time per town (per grid for a town office).
    level = "grid" if office_unit.level == "town" else "town"
    grouped: dict[str | None, list[Row]] = defaultdict(list)
    for r in rows:
        grouped[_row_unit(r, level)].append(r)
    by_unit: list[GroupTimes] = []
    for code in sorted(grouped, key=lambda k: (k is None, k or "")):
        group = grouped[code]
        seconds = [(r.resolved_at - r.created_at).total_seconds() for r in group if r.resolved_at]
        by_unit.append(
            GroupTimes(
                unit=tree.by_code.get(code) if code else None,
                cases=len(group),
                solved=sum(r.status in ("resolved", "closed") for r in group),
                resolve_median=percentile(seconds, 50),
                resolve_p90=percentile(seconds, 90),
            )
        )

    buckets = weeks(period)
    for r in rows:
        if r.rating is None:
            continue
        day = r.created_at.astimezone(tz).date()
        for b in buckets:
            if b.first <= day <= b.last:
                b.rated += 1
                b.satisfied += r.rating == 1
                break

    categories = Counter(r.category for r in rows).most_common()
    categories.sort(key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
    return StatsReport(
        period=period,
        total=total,
        open=sum(r.status in ACTIVE_STATUSES for r in rows),
        daily=daily,
        by_unit_level=level,
        by_unit=by_unit,
        satisfaction=buckets,
        categories=categories[:top_categories],
        rows=rows,
    )
