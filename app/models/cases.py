"""Cases, their timeline and the people taking part in them."""

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
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, utcnow
from app.models.directory import Region

CASE_STATUSES = ("awaiting_address", "open", "claimed", "resolved", "closed")


ACTIVE_STATUSES = ("awaiting_address", "open", "claimed")


CASE_LEVELS = ("grid", "town", "county", "city")


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
    # Loaded when read (a case's page, the API's detail), not with every case:
    # the worker loads cases by the hundred and never reads their timeline.
    events: Mapped[list[CaseEvent]] = relationship(back_populates="case", order_by="CaseEvent.id")


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
