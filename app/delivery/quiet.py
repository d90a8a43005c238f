"""Quiet hours: non-urgent notices to volunteers wait until the hours end.

Configured in the policy file (`[quiet_hours] start, end, roles`); urgent
cases (any policy but `normal`) always go out, and so does every answer to
something the member texted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from app.models.cases import Case
from app.models.directory import Member
from routing.delivery import may_hold, quiet_release

if TYPE_CHECKING:
    from app.context import Ctx


def hold_until(ctx: Ctx, case: Case | None, to: str, template: str) -> datetime | None:
    """When the SMS may go, if quiet hours hold it back; None: at once
    (the rule: `routing.delivery.quiet_release`)."""
    quiet = ctx.rt.policies.quiet
    case_priority = case.priority if case is not None else None
    tz = ctx.rt.settings.tz
    local_now = ctx.now.astimezone(tz).replace(tzinfo=None)
    if not may_hold(quiet, template=template, case_priority=case_priority):
        return None  # no lookup of the member's roles
    assert quiet is not None
    if quiet.holds(local_now) is None:
        return None  # outside the quiet hours: no lookup either
    roles = ctx.session.scalars(
        select(Member.role).where(Member.phone == to, Member.active.is_(True))
    ).all()
    release = quiet_release(
        quiet,
        template=template,
        case_priority=case_priority,
        roles=roles,
        local_now=local_now,
    )
    return None if release is None else release.replace(tzinfo=tz).astimezone(UTC)
