"""Words for the codes the console shows (statuses, levels, roles, timeline kinds)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.cases.names import display_name
from app.console.render import translator
from app.models.cases import Case
from app.models.directory import Region


def status_labels(lang: str) -> dict[str, str]:
    _ = translator(lang)
    return {
        "awaiting_address": _("Awaiting address"),
        "open": _("To claim"),
        "claimed": _("In progress"),
        "resolved": _("Awaiting rating"),
        "closed": _("Closed"),
    }


def level_labels(lang: str) -> dict[str, str]:
    _ = translator(lang)
    return {"grid": _("Grid"), "town": _("Town"), "county": _("County"), "city": _("City")}


def event_labels(lang: str) -> dict[str, str]:
    _ = translator(lang)
    return {
        "received": _("Message received"),
        "routed": _("Routed"),
        "forwarded": _("Forwarded to the grid team"),
        "claimed": _("Claimed"),
        "relayed": _("Reply relayed to the resident"),
        "messaged": _("Message to the resident"),
        "resolved": _("Resolved"),
        "closed": _("Closed"),
        "reopened": _("Reopened"),
        "escalated": _("Escalated"),
        "transferred": _("Transferred"),
        "assigned": _("Assigned"),
        "comment": _("Internal note"),
        "misrouted": _("Sent back as misrouted"),
        "sms": _("SMS"),
    }


def area(case: Case) -> str:
    """镇 › 社区 › 网格 of the case (what of it is known)."""
    grid: Region | None = case.grid
    if grid is None:
        return "—"
    names = [grid.name]
    node = grid.parent
    while node is not None and node.level in ("community", "town"):
        names.append(node.name)
        node = node.parent
    return " › ".join(reversed(names))


def due_at(case: Case) -> datetime | None:
    """The deadline that runs now: claim while open, resolution while claimed."""
    if case.status == "open":
        return case.claim_due_at
    if case.status == "claimed":
        return case.resolve_due_at
    return None


def _duration(lang: str, delta: timedelta) -> str:
    _ = translator(lang)
    minutes = int(delta.total_seconds() // 60)
    if minutes >= 48 * 60:
        return _("%(d)d d") % {"d": minutes // (24 * 60)}
    if minutes >= 60:
        return _("%(h)d h %(m)d min") % {"h": minutes // 60, "m": minutes % 60}
    return _("%(m)d min") % {"m": max(minutes, 0)}


SOON = timedelta(hours=1)


def countdown(lang: str, case: Case, now: datetime) -> tuple[str, str]:
    """(text, css class) of the running deadline: left, soon, or overdue."""
    _ = translator(lang)
    due = due_at(case)
    if due is None:
        return "—", ""
    if due <= now:
        return _("%(t)s overdue") % {"t": _duration(lang, now - due)}, "overdue"
    css = "soon" if due - now <= SOON else ""
    return _("%(t)s left") % {"t": _duration(lang, due - now)}, css


def assignee(session: Session, case: Case, lang: str) -> str:
    """Who holds the case: a member's name, an office (and its staff member), a masked phone."""
    if not case.claimed_by:
        return "—"
    parts = case.claimed_by.split(":")
    name = display_name(session, case.claimed_by, lang)
    if len(parts) == 3 and parts[0] == "api" and parts[2].startswith("@"):
        return f"{name} · {parts[2][1:]}"
    return name
