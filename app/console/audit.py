"""The audit log: every phone reveal and every CSV export, with who, when, why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.console.auth import StaffContext
from app.directory.offices import CITY_CODE, Office, region_filter
from app.models.console import AuditEntry

AUDIT_ACTIONS = ("reveal_phone", "export_csv")


def write_audit(
    session: Session,
    ctx: StaffContext,
    *,
    action: str,
    now: datetime,
    case_id: int | None = None,
    purpose: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Written in the request's transaction: no reveal or export without its row."""
    entry = AuditEntry(
        at=now,
        staff_id=ctx.staff.id,
        username=ctx.staff.username,
        office_code=ctx.office.code,
        action=action,
        case_id=case_id,
        purpose=purpose,
        client_ip=ctx.client_ip[:64],
        detail=detail or {},
    )
    session.add(entry)
    session.flush()
    return entry


def visible_entries(
    session: Session, office: Office, *, limit: int, before: int | None = None
) -> list[AuditEntry]:
    """The entries of the office and of the offices under it (the city: all), newest first."""
    from app.models.directory import Region

    stmt = select(AuditEntry)
    if office.code != CITY_CODE:
        codes = select(Region.code).where(region_filter(session, office))
        stmt = stmt.where(AuditEntry.office_code.in_(codes))
    if before is not None:
        stmt = stmt.where(AuditEntry.id < before)
    return list(session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit)))
