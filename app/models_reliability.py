"""Tables and indexes of the reliability features (issue #6): the outbox queue
order, the per-sender send rate, and the lookups of the inbound guards.

Indexes on tables defined in `app.models` are declared here, against those
tables, so that the schema of this feature lives (and migrates) in one place.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.models import InboundMessage, OutboundMessage


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
# The worker's next batch (app/inbound.py): the waiting messages in order, and
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
