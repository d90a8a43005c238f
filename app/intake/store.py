"""Storing an inbound SMS: the one typed record of a text as it arrived, and
its idempotent insert.

The webhook, the spool's replay and `gridline sms inbound` all store an
`InboundSms` here. The unique constraint on `message_sid` decides what is
new (insert … on conflict do nothing), not a prior SELECT: two concurrent
deliveries of one SID store exactly one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.models.messages import InboundMessage


@dataclass(frozen=True)
class InboundSms:
    """One text as the gateway handed it over."""

    message_sid: str
    from_phone: str  # E.164
    to_phone: str | None
    body: str
    received_at: datetime  # aware
    params: dict[str, Any] = field(default_factory=dict)  # Latitude, Longitude, NumMedia

    def as_row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> InboundSms:
        """From `as_row`'s dict (or the spool's JSON of it, times as ISO text);
        raises ValueError, KeyError or TypeError on a malformed one."""
        received_at = row["received_at"]
        if isinstance(received_at, str):
            received_at = datetime.fromisoformat(received_at)
        if not isinstance(received_at, datetime) or received_at.tzinfo is None:
            raise ValueError("received_at must be an aware time")
        params = row.get("params") or {}
        if not isinstance(params, dict):
            raise TypeError("params must be an object")
        to_phone = row.get("to_phone")
        return cls(
            message_sid=str(row["message_sid"]),
            from_phone=str(row["from_phone"]),
            to_phone=None if to_phone is None else str(to_phone),
            body=str(row["body"]),
            received_at=received_at,
            params=dict(params),
        )


def store(session: Session | Connection, sms: InboundSms) -> bool:
    """Insert the message unless its SID is already stored; True if it was new."""
    return store_many(session, [sms])[0]


def store_many(session: Session | Connection, messages: Sequence[InboundSms]) -> list[bool]:
    """Insert messages in one statement; per message, True if it was new (the
    first of a SID within `messages` is the new one)."""
    if not messages:
        return []
    table = InboundMessage.__table__
    assert isinstance(table, Table)
    bind = session.get_bind() if isinstance(session, Session) else session
    dialect_insert = pg_insert if bind.dialect.name == "postgresql" else sqlite_insert
    stmt = (
        dialect_insert(table)
        .on_conflict_do_nothing(index_elements=["message_sid"])
        .returning(table.c.message_sid)
    )
    rows = [{**m.as_row(), "status": "received"} for m in messages]
    # RETURNING names the rows this statement inserted; rowcount is not
    # reliable for ON CONFLICT DO NOTHING across drivers.
    inserted = set(session.execute(stmt, rows).scalars())
    created = []
    for m in messages:
        created.append(m.message_sid in inserted)
        inserted.discard(m.message_sid)  # a second copy in the same call is a duplicate
    return created
