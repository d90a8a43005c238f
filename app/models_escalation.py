"""Tables of the escalation engine (issue 4), beside the core models.

Imported at the end of `app.models` so that Alembic sees them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime as NaiveDateTime
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class PeriodicRun(Base):
    """One run of a periodic job (a daily digest, the roster-gap notice).

    The unique (job, period) pair is what makes a run happen once however many
    workers try: the first to insert it does the work in the same transaction.
    """

    __tablename__ = "periodic_runs"
    __table_args__ = (UniqueConstraint("job", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(32))
    # The period it covers, e.g. the local date "2026-11-25".
    period: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    sent: Mapped[int] = mapped_column(default=0)


class RosterOverride(Base):
    """A one-off change to a unit's roster: `phone` is on duty from `starts_at`
    to `ends_at` (naive wall clock in the configured zone, like shifts), in place
    of `replaces` when given (a replacement), or in addition to the roster."""

    __tablename__ = "roster_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    phone: Mapped[str] = mapped_column(String(32))
    replaces: Mapped[str | None] = mapped_column(String(32))
    starts_at: Mapped[datetime] = mapped_column(NaiveDateTime(timezone=False))
    ends_at: Mapped[datetime] = mapped_column(NaiveDateTime(timezone=False))
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MemberLeave(Base):
    """A member's leave (naive wall clock): off every roster and every fallback."""

    __tablename__ = "member_leaves"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), index=True)
    starts_at: Mapped[datetime] = mapped_column(NaiveDateTime(timezone=False))
    ends_at: Mapped[datetime] = mapped_column(NaiveDateTime(timezone=False))
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
