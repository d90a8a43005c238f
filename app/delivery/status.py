"""Delivery status callbacks: the gateway's word on what became of an SMS.

A callback is kept as a `DeliveryReport` row and applied to its outbox row
monotonically (a late "sent" never overwrites "delivered"). A case notice
reported undelivered or failed brings in the next people on the case's ladder
at once (a step due now), rather than leaving the case to its deadline. A
callback can beat the sender's commit of the SID it names; it is kept and
applied when the SID is recorded (`apply_early_reports`, from app/delivery/outbox.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.deadlines import ScheduledStep
from app.models.messages import DeliveryReport, OutboundMessage

_CODE_WIDTH = 16


def clip_code(code: str | None) -> str | None:
    """A provider's error code as the outbox keeps it (at most 16 characters)."""
    return code[:_CODE_WIDTH] if code else None


# Provider delivery statuses in the order they can follow each other. A status
# only replaces one of a lower rank, so a late "sent" never overwrites
# "delivered"; the failure statuses are final.
_DELIVERY_RANK = {
    "accepted": 1,
    "queued": 1,
    "scheduled": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
    "read": 5,
}
_DELIVERY_FINAL = frozenset({"undelivered", "failed", "canceled", "read"})


def _apply_status(row: OutboundMessage, status: str, error_code: str | None) -> bool:
    """Move the row's delivery status forward; statuses we do not know
    (`receiving`, `partially_delivered`, …) and backward moves are ignored.
    True when the status moved."""
    new_rank = _DELIVERY_RANK.get(status)
    if new_rank is None or row.delivery_status in _DELIVERY_FINAL:
        return False
    old_rank = _DELIVERY_RANK.get(row.delivery_status or "", 0)
    # Equal ranks may replace each other below "delivered" (queued ↔ accepted).
    if new_rank > old_rank or (new_rank == old_rank and old_rank < 4):
        moved = row.delivery_status != status
        row.delivery_status = status
        if error_code:
            row.error_code = clip_code(error_code)
        return moved
    return False


# Notices that hand a case to somebody: one that does not arrive must not
# leave the case waiting for its deadline (app/deadlines/ladder.py).
_CASE_NOTICES = frozenset(
    {
        "forward",
        "claim_overdue",
        "escalated_notice",
        "assigned_notice",
        "reopened_team",
        "resent_top",
        "undelivered_next",
    }
)


# Texts to the resident that somebody wrote (a worker's or an office's reply,
# a resolution note): whoever wrote one that does not arrive is told.
RESIDENT_REPLIES = frozenset({"relay_resident", "resolved_resident"})


def not_delivered(session: Session, row: OutboundMessage, *, now: datetime) -> None:
    """A case notice, or a reply to the resident, failed for good or was
    reported undelivered: a step, due now, brings in the next people on the
    ladder or tells the writer (app/deadlines/ladder.py; the scheduler fires
    it on its next pass)."""
    if row.case_id is None:
        return
    if row.template in _CASE_NOTICES:
        kind = "undelivered"
    elif row.template in RESIDENT_REPLIES:
        kind = "reply_undelivered"
    else:
        return
    session.add(
        ScheduledStep(case_id=row.case_id, kind=kind, due_at=now, params={"outbound_id": row.id})
    )


def _after_status(session: Session, row: OutboundMessage, *, now: datetime) -> None:
    if row.delivery_status in ("undelivered", "failed"):
        not_delivered(session, row, now=now)


def record_delivery_status(
    session: Session, *, provider_sid: str, status: str, error_code: str | None, now: datetime
) -> bool:
    """Keep a status callback as a `DeliveryReport` row and apply it monotonically.

    Returns False when no outbox row has that SID yet: a callback can beat the
    worker's commit of the SID, so the report is kept and applied when the SID
    is recorded (see `apply_early_reports`).
    """
    status = status.strip().lower()
    row = session.scalar(
        select(OutboundMessage).where(OutboundMessage.provider_sid == provider_sid)
    )
    session.add(
        DeliveryReport(
            provider_sid=provider_sid[:64],
            status=status[:16],
            error_code=clip_code(error_code),
            received_at=now,
            outbound_id=row.id if row is not None else None,
        )
    )
    if row is None:
        return False
    if _apply_status(row, status, error_code):
        _after_status(session, row, now=now)
    return True


def apply_early_reports(
    session: Session, rows: Sequence[OutboundMessage], *, now: datetime
) -> None:
    """Apply the reports that came before these rows' SIDs were recorded (the
    sender calls this when it records them)."""
    by_sid = {row.provider_sid: row for row in rows if row.provider_sid}
    if not by_sid:
        return
    reports = session.scalars(
        select(DeliveryReport)
        .where(
            DeliveryReport.provider_sid.in_(by_sid),
            DeliveryReport.outbound_id.is_(None),
        )
        .order_by(DeliveryReport.id)
    )
    for report in reports:
        row = by_sid[report.provider_sid]
        report.outbound_id = row.id
        if _apply_status(row, report.status, report.error_code):
            _after_status(session, row, now=now)
