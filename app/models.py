"""The database schema, as typed SQLAlchemy 2 models.

Phones are stored as E.164 strings. Times are aware UTC datetimes (see
`UTCDateTime`); roster shifts are the exception, kept as local wall time in
the configured zone because recurrence is defined on the wall clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import DateTime as NaiveDateTime
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow

REGION_LEVELS = ("county", "town", "community", "grid")
CASE_STATUSES = ("awaiting_address", "open", "claimed", "resolved", "closed")
ACTIVE_STATUSES = ("awaiting_address", "open", "claimed")
CASE_LEVELS = ("grid", "town", "county", "city")


class Region(Base):
    """A node of the region tree: county-level unit > town > community > grid."""

    __tablename__ = "regions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    parent: Mapped[Region | None] = relationship(remote_side=[id], lazy="joined", join_depth=3)


class Member(Base):
    """A grid team member, or a town/county office duty phone (unit = that office)."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("phone", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    unit: Mapped[Region] = relationship(lazy="joined")


class Resident(Base):
    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str | None] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(300))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    tags: Mapped[str] = mapped_column(String(300), default="")
    opted_out: Mapped[bool] = mapped_column(default=False)
    # Where the address came from: "import", or "sms" when the resident told us.
    address_source: Mapped[str | None] = mapped_column(String(16))
    address_confirmed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    grid: Mapped[Region | None] = relationship(lazy="joined")


class Address(Base):
    """A gazetteer entry: an address or address prefix that belongs to a grid."""

    __tablename__ = "addresses"
    __table_args__ = (UniqueConstraint("address", "grid_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(300))
    normalized: Mapped[str] = mapped_column(String(300), index=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Shift(Base):
    """A roster shift: who of a unit is on duty, once or recurring (RFC 5545 RRULE).

    starts_at/ends_at are naive wall-clock times in the configured time zone.
    """

    __tablename__ = "shifts"
    __table_args__ = (UniqueConstraint("unit_id", "phone", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    phone: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[datetime] = mapped_column(NaiveDateTime(timezone=False))
    ends_at: Mapped[datetime] = mapped_column(NaiveDateTime(timezone=False))
    rrule: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_resident_phone_status", "resident_phone", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The digits of the SMS code, kept for history; `open_code` holds the same
    # digits while the case is not closed and is unique, so a code is never
    # shared by two live cases (NULLs do not collide on either database).
    code: Mapped[str] = mapped_column(String(8), index=True)
    open_code: Mapped[str | None] = mapped_column(String(8), unique=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    level: Mapped[str] = mapped_column(String(10), default="grid", index=True)
    priority: Mapped[str] = mapped_column(String(32), default="normal")
    # The policy the case started with (durations), so that editing the policy
    # file changes new cases only; and the category its text was given.
    policy_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    category: Mapped[str | None] = mapped_column(String(32))
    resident_phone: Mapped[str] = mapped_column(String(32))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    town_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    county_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    routing_method: Mapped[str | None] = mapped_column(String(20))
    routing_evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # A phone, or an API actor `api:<office code>:<key prefix>` (up to 80 chars).
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    rating: Mapped[int | None] = mapped_column(Integer)
    address_attempts: Mapped[int] = mapped_column(default=0)
    claim_due_at: Mapped[datetime | None]
    escalate_due_at: Mapped[datetime | None]
    resolve_due_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    grid: Mapped[Region | None] = relationship(foreign_keys=[grid_id], lazy="joined")
    town: Mapped[Region | None] = relationship(foreign_keys=[town_id], lazy="joined")
    county: Mapped[Region | None] = relationship(foreign_keys=[county_id], lazy="joined")
    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.id", lazy="selectin"
    )


class CaseEvent(Base):
    """One entry of a case's timeline: every state change writes one."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(80))
    channel: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    case: Mapped[Case] = relationship(back_populates="events")


class CaseParticipant(Base):
    """A phone that was sent the case and may therefore act on it by SMS."""

    __tablename__ = "case_participants"
    __table_args__ = (UniqueConstraint("case_id", "phone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    phone: Mapped[str] = mapped_column(String(32), index=True)
    # forwarded (grid on shift), team (whole grid), office (town/county duty), assigned
    reason: Mapped[str] = mapped_column(String(16))
    # The case level at which the phone was brought in.
    level: Mapped[str] = mapped_column(String(10))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScheduledStep(Base):
    """A deadline of a case, due at a time; the worker fires each one once."""

    __tablename__ = "scheduled_steps"
    __table_args__ = (Index("ix_scheduled_steps_pending", "done_at", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    # fired, or cancelled (the case moved on before the step was due)
    outcome: Mapped[str | None] = mapped_column(String(16))
    # A worker's lease (see app/scheduler.py): `lease_token` counts leases and
    # fences a worker whose lease was taken over after it expired.
    lease_until: Mapped[datetime | None]
    lease_token: Mapped[int] = mapped_column(default=0)
    # What the step needs besides its case (e.g. the undelivered outbox row).
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class InboundMessage(Base):
    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_sid: Mapped[str] = mapped_column(String(64), unique=True)
    # Its indexes (a sender's recent messages; the waiting ones) are in
    # app/models_reliability.py.
    from_phone: Mapped[str] = mapped_column(String(32))
    to_phone: Mapped[str | None] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime]
    # received -> processed | failed | throttled (a flood: kept, not acted on; app/guards.py)
    status: Mapped[str] = mapped_column(String(16), default="received")
    processed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))


class OutboundMessage(Base):
    """The outbox: every SMS we send, written with the change that caused it."""

    __tablename__ = "outbound_messages"
    # Its queue index (status, priority, due time) is in app/models_reliability.py.

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


# The tables of other modules, on the same metadata (Alembic sees them).
from app import (  # noqa: E402
    models_api,  # noqa: F401  (office API tables)
    models_console,  # noqa: F401  (office console tables)
    models_escalation,  # noqa: F401  (escalation tables)
    models_reliability,  # noqa: F401  (outbox queue, sender rates, guards)
    models_routing,  # noqa: F401  (routing tables)
)
