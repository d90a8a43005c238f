"""SMS in and out: inbound messages, the outbox, delivery attempts and reports,
the shared send rate, and the indexes the worker and the guards look them up by.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class InboundMessage(Base):
    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_sid: Mapped[str] = mapped_column(String(64), unique=True)
    # Its indexes (a sender's recent messages; the waiting ones) are below.
    from_phone: Mapped[str] = mapped_column(String(32))
    to_phone: Mapped[str | None] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime]
    # received -> processed | failed | throttled (a flood: kept, not acted on;
    # app/inbound/guards.py)
    status: Mapped[str] = mapped_column(String(16), default="received")
    processed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))


class OutboundMessage(Base):
    """The outbox: every SMS we send, written with the change that caused it."""

    __tablename__ = "outbound_messages"
    # Its queue index (status, priority, due time) is below.

    id: Mapped[int] = mapped_column(primary_key=True)
    to_phone: Mapped[str] = mapped_column(String(32), index=True)
    template: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    locale: Mapped[str] = mapped_column(String(8))
    body: Mapped[str] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"), index=True)
    priority: Mapped[int] = mapped_column(default=0)
    # pending -> sending -> sent | failed   (sending is a lease, see outbox.py)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Provider-reported delivery status (status callbacks), monotonic.
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(16))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DeliveryAttempt(Base):
    """One row per try at handing an outbox message to the gateway."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbound_id: Mapped[int] = mapped_column(ForeignKey("outbound_messages.id"), index=True)
    at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))  # sent, transient, permanent, lost
    error_code: Mapped[str | None] = mapped_column(String(16))
    error_message: Mapped[str | None] = mapped_column(Text)
    ambiguous: Mapped[bool] = mapped_column(default=False)


class DeliveryReport(Base):
    """A status callback from the gateway, kept as it came.

    It is linked to its outbox row when the SID is known; one that arrives
    before the worker has recorded the SID is linked and applied then.
    """

    __tablename__ = "delivery_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_sid: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[datetime]
    outbound_id: Mapped[int | None] = mapped_column(ForeignKey("outbound_messages.id"), index=True)


class SenderRate(Base):
    """The send rate of one sending number, shared by every worker.

    A GCRA token bucket kept as one timestamp: `tat` (theoretical arrival
    time) is when the bucket would be empty again. A send is allowed while
    `max(tat, now) + interval - now <= burst`; it moves `tat` on by one
    interval. One row per sending number, locked by the worker that leases.
    """

    __tablename__ = "sender_rates"

    sender: Mapped[str] = mapped_column(String(32), primary_key=True)
    tat: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# The worker leases the most urgent due row: status = 'pending' (or an
# expired 'sending'), then priority (highest first), due time, id. With this
# index the lease is one index range scan however long the backlog is.
Index(
    "ix_outbound_messages_queue",
    OutboundMessage.status,
    OutboundMessage.priority.desc(),
    OutboundMessage.next_attempt_at,
    OutboundMessage.id,
)


# Flood and loop guards count one sender's recent messages (and any lookup by
# sender starts here: no index on from_phone alone).
Index("ix_inbound_messages_sender_recent", InboundMessage.from_phone, InboundMessage.received_at)


# The worker's next batch (app/inbound/queue.py): the waiting messages in order, and
# each sender's oldest waiting one. Partial: they hold only the backlog, so
# they stay small and cheap to keep. They replace indexes on status and on
# from_phone: with those, PostgreSQL's planner, its statistics taken before a
# burst (few rows `received`), joined the backlog with itself row by row, a
# time quadratic in the backlog (0.43 s a batch at 2,000 waiting: 4,000,000
# rows compared), just when a burst has built one; now 7 ms.
Index(
    "ix_inbound_messages_waiting",
    InboundMessage.id,
    postgresql_where=InboundMessage.status == "received",
    sqlite_where=InboundMessage.status == "received",
)


Index(
    "ix_inbound_messages_waiting_sender",
    InboundMessage.from_phone,
    InboundMessage.id,
    postgresql_where=InboundMessage.status == "received",
    sqlite_where=InboundMessage.status == "received",
)


# Auto-reply cap: recent outbox rows to one number.
Index("ix_outbound_messages_to_recent", OutboundMessage.to_phone, OutboundMessage.created_at)
