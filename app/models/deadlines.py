"""Deadline steps of cases and the runs of daily jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


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
    # A worker's lease (see app/deadlines/scheduler.py): `lease_token` counts leases and
    # fences a worker whose lease was taken over after it expired.
    lease_until: Mapped[datetime | None]
    lease_token: Mapped[int] = mapped_column(default=0)
    # What the step needs besides its case (e.g. the undelivered outbox row).
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)


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
