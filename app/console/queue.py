"""The queue's queries: the office's cases by status card and filters.

Cards (DESIGN.md statuses): to_claim = `open`; in_progress = `claimed`;
due_soon / overdue = the running deadline (claim while open, resolution while
claimed) within the next hour / past; to_rate = `resolved` (the resident was
asked to rate); all = everything the office sees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy import case as sa_case
from sqlalchemy.orm import Session

from app.console.labels import SOON
from app.directory.offices import Office, case_filter
from app.errors import Unprocessable
from app.models.cases import CASE_LEVELS, Case
from app.models.directory import Region

View = Literal["to_claim", "in_progress", "due_soon", "overdue", "to_rate", "all"]
VIEWS: tuple[View, ...] = ("to_claim", "in_progress", "due_soon", "overdue", "to_rate", "all")
PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    view: View = "all"
    level: str | None = None
    grid: str | None = None
    category: str | None = None
    q: str | None = None
    page: int = 1

    def params(self, **changes: object) -> dict[str, str]:
        """The filters as URL query parameters (empty ones left out)."""
        values: dict[str, object] = {
            "view": self.view,
            "level": self.level,
            "grid": self.grid,
            "category": self.category,
            "q": self.q,
            "page": self.page,
        }
        values.update(changes)
        return {
            k: str(v)
            for k, v in values.items()
            if v not in (None, "")
            and not (k == "page" and v == 1)
            and not (k == "view" and v == "all")
        }


def running_due() -> ColumnElement[datetime | None]:
    return sa_case(
        (Case.status == "open", Case.claim_due_at),
        (Case.status == "claimed", Case.resolve_due_at),
        else_=None,
    )


def view_clause(view: View, now: datetime) -> ColumnElement[bool] | None:
    due = running_due()
    if view == "to_claim":
        return Case.status == "open"
    if view == "in_progress":
        return Case.status == "claimed"
    if view == "due_soon":
        return and_(due > now, due <= now + SOON)
    if view == "overdue":
        return due <= now
    if view == "to_rate":
        return Case.status == "resolved"
    return None


def _base(office: Office, filters: Filters) -> Select[Case]:
    stmt = select(Case).where(case_filter(office))
    if filters.level:
        stmt = stmt.where(Case.level == filters.level)
    if filters.grid:
        stmt = stmt.where(
            Case.grid_id == select(Region.id).where(Region.code == filters.grid).scalar_subquery()
        )
    if filters.category:
        stmt = stmt.where(Case.category == filters.category)
    if filters.q:
        text = filters.q.strip()
        code = text.lstrip("#＃")
        if code.isascii() and code.isdigit() and 4 <= len(code) <= 8:
            stmt = stmt.where(Case.code == code)
        else:
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(Case.summary.like(f"%{escaped}%", escape="\\"))
    return stmt


def counts(session: Session, office: Office, filters: Filters, now: datetime) -> dict[str, int]:
    base = _base(office, filters).subquery()
    found: dict[str, int] = {}
    for view in VIEWS:
        clause = view_clause(view, now)
        stmt = select(func.count()).select_from(Case).where(Case.id.in_(select(base.c.id)))
        if clause is not None:
            stmt = stmt.where(clause)
        found[view] = int(session.scalar(stmt) or 0)
    return found


def filtered(office: Office, filters: Filters, now: datetime) -> Select[Case]:
    stmt = _base(office, filters)
    clause = view_clause(filters.view, now)
    if clause is not None:
        stmt = stmt.where(clause)
    return stmt


def page(
    session: Session, office: Office, filters: Filters, now: datetime
) -> tuple[list[Case], bool]:
    """One page of cases, newest first, and whether there is another page."""
    stmt = (
        filtered(office, filters, now)
        .order_by(Case.id.desc())
        .offset((filters.page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)
    )
    rows = list(session.scalars(stmt))
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def grids(session: Session, office: Office) -> list[Region]:
    from app.directory.offices import region_filter

    return list(
        session.scalars(
            select(Region)
            .where(Region.level == "grid", region_filter(session, office))
            .order_by(Region.code)
        )
    )


def categories(session: Session, office: Office) -> list[str]:
    return [
        c
        for c in session.scalars(
            select(Case.category).where(case_filter(office)).distinct().order_by(Case.category)
        )
        if c
    ]


def parse_filters(get: Callable[[str], str | None]) -> Filters:
    """Filters from query or form values; empty values mean "any"; 422 with a reason."""

    def text(name: str, limit: int) -> str | None:
        value = (get(name) or "").strip()
        if len(value) > limit:
            raise Unprocessable(f"{name}: longer than {limit} characters")
        if any(ord(ch) < 32 for ch in value):
            raise Unprocessable(f"{name}: control characters")
        return value or None

    view = text("view", 20) or "all"
    if view not in VIEWS:
        raise Unprocessable(f"view: one of {', '.join(VIEWS)}")
    level = text("level", 10)
    if level is not None and level not in CASE_LEVELS:
        raise Unprocessable(f"level: one of {', '.join(CASE_LEVELS)}")
    raw_page = text("page", 6) or "1"
    if not raw_page.isascii() or not raw_page.isdigit() or not 1 <= int(raw_page) <= 10000:
        raise Unprocessable("page: a number from 1 to 10000")
    return Filters(
        view=view,
        level=level,
        grid=text("grid", 64),
        category=text("category", 32),
        q=text("q", 100),
        page=int(raw_page),
    )
