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

if TYPE_CHECKING:
    from app.context import Ctx

# Notices the platform sends on its own about a case or an area; replies to a
# member's own command are not among them.
NOTICES = frozenset(
    {
        "forward",
        "forward_append",
        "claim_overdue",
        "escalated_notice",
        "reopened_team",
        "resent_top",
        "undelivered_next",
        "claimed_notice",
        "resolve_reminder",
        "overdue_digest",
        "roster_gap",
    }
)


def hold_until(ctx: Ctx, case: Case | None, to: str, template: str) -> datetime | None:
    """When the SMS may go, if quiet hours hold it back; None: at once."""
    quiet = ctx.rt.policies.quiet
    if quiet is None or template not in NOTICES:
        return None
    if case is not None and case.priority != "normal":
        return None
    tz = ctx.rt.settings.tz
    release = quiet.holds(ctx.now.astimezone(tz).replace(tzinfo=None))
    if release is None:
        return None
    roles = ctx.session.scalars(
        select(Member.role).where(Member.phone == to, Member.active.is_(True))
    ).all()
    # Only people who are nothing but volunteers (a cadre who also volunteers is on duty).
    if not roles or not all(role in quiet.roles for role in roles):
        return None
    return release.replace(tzinfo=tz).astimezone(UTC)
