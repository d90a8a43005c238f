"""The durable outbox: SMS are written with the state change that causes them,
then handed to the gateway by the worker.

A row moves pending → sending → sent | failed. `sending` is a lease committed
before the gateway is called, so a worker that dies mid-send leaves a row that
another worker recovers after `lease_until` (a recovered lease is an ambiguous
attempt: the SMS may have left). Every attempt is a `DeliveryAttempt` row.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work
from app.models import DeliveryAttempt, OutboundMessage
from sms.gateway import Gateway, OutgoingSms, PermanentSendError, SendError, TransientSendError
from sms.phones import mask_phone
from sms.templates import render

log = logging.getLogger("gridline.outbox")

PRIORITY_URGENT = 10
PRIORITY_NORMAL = 0


def enqueue(
    session: Session,
    *,
    to: str,
    template: str,
    params: dict[str, Any],
    locale: str,
    now: datetime,
    case_id: int | None = None,
    inbound_id: int | None = None,
    priority: int = PRIORITY_NORMAL,
) -> OutboundMessage:
    """Add an SMS to the outbox in the caller's transaction (flushed, not committed)."""
    message = OutboundMessage(
        to_phone=to,
        template=template,
        params=params,
        locale=locale,
        body=render(template, locale, **params),
        case_id=case_id,
        inbound_id=inbound_id,
        priority=priority,
        status="pending",
        next_attempt_at=now,
        created_at=now,
    )
    session.add(message)
    session.flush()
    return message


@dataclass(frozen=True)
class Backoff:
    base_seconds: float = 5.0
    cap_seconds: float = 3600.0
    max_attempts: int = 8

    def delay(self, attempts: int, *, rng: random.Random | None = None) -> timedelta:
        """Exponential backoff with full jitter (between half and the whole step)."""
        step = min(self.cap_seconds, self.base_seconds * (2 ** max(0, attempts - 1)))
        jitter = (rng or random).uniform(0.5, 1.0)
        return timedelta(seconds=step * jitter)


def _lease_due(session: Session, *, now: datetime, lease: timedelta, limit: int) -> list[int]:
    due = or_(
        and_(OutboundMessage.status == "pending", OutboundMessage.next_attempt_at <= now),
        and_(OutboundMessage.status == "sending", OutboundMessage.lease_until < now),
    )
    stmt = (
        select(OutboundMessage)
        .where(due)
        .order_by(OutboundMessage.priority.desc(), OutboundMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list(session.scalars(stmt))
    for row in rows:
        if row.status == "sending":
            # A worker died holding this lease: the SMS may or may not have left.
            session.add(
                DeliveryAttempt(
                    outbound_id=row.id,
                    at=now,
                    outcome="lost",
                    error_message="lease expired before the attempt was recorded",
                    ambiguous=True,
                )
            )
        row.status = "sending"
        row.lease_until = now + lease
        row.attempts += 1
    return [row.id for row in rows]


def _record(
    session: Session, message_id: int, *, now: datetime, outcome: Any, backoff: Backoff
) -> str:
    row = session.get(OutboundMessage, message_id)
    if row is None or row.status != "sending":
        return "skipped"
    if isinstance(outcome, SendError):
        ambiguous = isinstance(outcome, TransientSendError) and outcome.ambiguous
        permanent = isinstance(outcome, PermanentSendError)
        session.add(
            DeliveryAttempt(
                outbound_id=row.id,
                at=now,
                outcome="permanent" if permanent else "transient",
                error_code=outcome.code,
                error_message=outcome.message,
                ambiguous=ambiguous,
            )
        )
        row.error_code = outcome.code
        row.error_message = outcome.message
        row.lease_until = None
        if permanent:
            row.status = "failed"
        elif row.attempts >= backoff.max_attempts:
            row.status = "failed"
            row.error_message = f"gave up after {row.attempts} attempts: {outcome.message}"
        else:
            row.status = "pending"
            row.next_attempt_at = now + backoff.delay(row.attempts)
        log.warning(
            "SMS %s to %s: %s (%s)", row.id, mask_phone(row.to_phone), row.status, outcome.message
        )
        return row.status
    session.add(DeliveryAttempt(outbound_id=row.id, at=now, outcome="sent"))
    row.status = "sent"
    row.provider_sid = outcome.provider_sid
    row.sent_at = now
    row.lease_until = None
    row.error_code = None
    row.error_message = None
    return "sent"


def deliver_due(
    sessions: sessionmaker[Session],
    gateway: Gateway,
    *,
    now: datetime,
    backoff: Backoff,
    lease: timedelta = timedelta(minutes=2),
    limit: int = 50,
) -> dict[str, int]:
    """Send what is due; returns counts by outcome."""
    with unit_of_work(sessions) as session:
        ids = _lease_due(session, now=now, lease=lease, limit=limit)
    counts: dict[str, int] = {}
    for message_id in ids:
        with unit_of_work(sessions) as session:
            row = session.get(OutboundMessage, message_id)
            assert row is not None
            sms = OutgoingSms(
                to=row.to_phone,
                body=row.body,
                template=row.template,
                params=dict(row.params),
                reference=str(row.id),
            )
        outcome: Any
        try:
            outcome = gateway.send(sms)
        except SendError as exc:
            outcome = exc
        except Exception as exc:  # a gateway bug must not kill the worker or lose the row
            log.exception("gateway %s raised", gateway.name)
            outcome = TransientSendError(f"gateway error: {exc!r}", code="internal", ambiguous=True)
        with unit_of_work(sessions) as session:
            result = _record(session, message_id, now=now, outcome=outcome, backoff=backoff)
        counts[result] = counts.get(result, 0) + 1
    return counts


# Provider delivery statuses in the order they can follow each other; the
# terminal ones share the last rank so a late "sent" never overwrites them.
_DELIVERY_RANK = {
    "accepted": 1,
    "queued": 1,
    "scheduled": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
    "canceled": 4,
}


def record_delivery_status(
    session: Session, *, provider_sid: str, status: str, error_code: str | None
) -> bool:
    """Apply a status callback monotonically; False when the SID is unknown."""
    status = status.lower()
    row = session.scalar(select(OutboundMessage).where(OutboundMessage.provider_sid == provider_sid))
    if row is None:
        return False
    new_rank = _DELIVERY_RANK.get(status)
    if new_rank is None:
        return True
    old_rank = _DELIVERY_RANK.get(row.delivery_status or "", 0)
    if new_rank > old_rank or (new_rank == old_rank and old_rank < 4):
        row.delivery_status = status
        if error_code:
            row.error_code = error_code
    return True


def pending_count(session: Session) -> int:
    from sqlalchemy import func

    return int(
        session.scalar(
            select(func.count()).where(OutboundMessage.status.in_(("pending", "sending")))
        )
        or 0
    )


__all__ = [
    "Backoff",
    "deliver_due",
    "enqueue",
    "pending_count",
    "record_delivery_status",
    "update",
]
