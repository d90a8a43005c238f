"""A case's category picks who of the grid team is texted first.

`[categories.health] roles = ["doctor"]` in the policy file: a health case goes
first to the grid's doctors (on leave excepted), and to the rest of those on
duty only if nobody has claimed it by half the claim window (a `forward_rest`
step). A category without such members changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from app.context import Ctx
from app.directory import rosters
from app.models.cases import Case
from app.models.deadlines import ScheduledStep
from app.models.directory import Member


def first_roles(ctx: Ctx, case: Case) -> tuple[str, ...]:
    category = ctx.rt.policies.categories.get(case.category or "")
    return category.roles if category is not None else ()


def split_first(ctx: Ctx, case: Case, on_duty: list[str]) -> tuple[list[str], list[str]]:
    """(texted now, texted later): the category's roles of the grid first."""
    roles = first_roles(ctx, case)
    if not roles or case.grid_id is None:
        return on_duty, []
    members = ctx.session.scalars(
        select(Member)
        .where(Member.unit_id == case.grid_id, Member.active.is_(True), Member.role.in_(roles))
        .order_by(Member.id)
    ).all()
    local = ctx.now.astimezone(ctx.rt.settings.tz).replace(tzinfo=None)
    away = {
        leave.phone
        for leave in rosters.leaves_of(ctx.session, [m.phone for m in members])
        if leave.starts_at <= local < leave.ends_at
    }
    first = [m.phone for m in members if m.phone not in away]
    if not first:
        return on_duty, []
    return first, [p for p in on_duty if p not in first]


def schedule_rest(ctx: Ctx, case: Case, later: list[str], *, due_at: datetime) -> None:
    ctx.session.add(
        ScheduledStep(case_id=case.id, kind="forward_rest", due_at=due_at, params={"phones": later})
    )
