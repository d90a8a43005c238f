"""The worker's queue of stored messages: each sender's oldest waiting one, in
arrival order, one sender's messages never out of order."""

from __future__ import annotations

import functools

from sqlalchemy import ColumnClause, Select, func, literal_column, select
from sqlalchemy.orm import Session, aliased

from app.models.messages import InboundMessage


def next_unprocessed(session: Session) -> InboundMessage | None:
    """Lease the oldest unprocessed message (skip ones another worker holds)."""
    found = next_batch(session, limit=1)
    return found[0] if found else None


def next_batch(session: Session, *, limit: int) -> list[InboundMessage]:
    """Lock up to `limit` messages to process in this transaction, oldest first:
    each sender's oldest unprocessed one only (so at most one per sender, and a
    sender's messages in order across batches); rows another worker holds are
    skipped on PostgreSQL."""
    return list(session.scalars(_next_batch_query(limit)))


# 'received' written into the SQL, not bound: a partial index serves a plan
# only when the query names its predicate's very value, and psycopg prepares
# a statement run five times, after which PostgreSQL may run it on a generic
# plan, made without the parameters' values.
_WAITING: ColumnClause[str] = literal_column("'received'")


@functools.lru_cache(maxsize=8)
def _next_batch_query(limit: int) -> Select[InboundMessage]:
    # Built once per limit: constructing it cost about as much as running
    # it, on every batch. A statement is immutable; executions share it.
    earlier = aliased(InboundMessage)
    # One sender's messages are processed in order: a message waits while an
    # earlier one from the same phone is unprocessed (or held by another
    # worker). Asked as "is it its sender's oldest waiting message", one probe
    # of ix_inbound_messages_waiting_sender per candidate, rather than as NOT
    # EXISTS (an earlier one): PostgreSQL turns that into an anti-join, which,
    # its statistics taken before a burst, it ran as a nested loop over the
    # whole backlog for every waiting row (app/models/messages.py).
    oldest_of_sender = (
        select(func.min(earlier.id))
        .where(earlier.from_phone == InboundMessage.from_phone, earlier.status == _WAITING)
        .scalar_subquery()
    )
    return (
        select(InboundMessage)
        .where(InboundMessage.status == _WAITING, InboundMessage.id == oldest_of_sender)
        .order_by(InboundMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
