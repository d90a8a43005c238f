"""Storing an inbound SMS (app/intake/store.py): idempotent by MessageSid, the
record's fields back as given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.db import unit_of_work
from app.intake.store import InboundSms, store, store_many
from app.models.messages import InboundMessage


def _sms(sid: str, at: datetime, **kw: object) -> InboundSms:
    values: dict[str, object] = {
        "message_sid": sid,
        "from_phone": "+8613700000001",
        "to_phone": None,
        "body": "x",
        "received_at": at,
        "params": {"Latitude": "30.0"},
    }
    values.update(kw)
    return InboundSms(**values)  # type: ignore[arg-type]


def test_store_many_says_which_messages_were_new(rt, clock):  # type: ignore[no-untyped-def]
    messages = [_sms(sid, clock.now) for sid in ("SMa", "SMb", "SMa")]
    with unit_of_work(rt.sessions) as session:
        assert store_many(session, messages) == [True, True, False]
    with unit_of_work(rt.sessions) as session:
        assert store_many(session, messages[:2]) == [False, False]
        assert store(session, _sms("SMc", clock.now)) is True
        assert store(session, _sms("SMc", clock.now)) is False
        stored = session.scalar(select(InboundMessage).where(InboundMessage.message_sid == "SMa"))
        assert stored is not None and stored.params == {"Latitude": "30.0"}
        assert stored.status == "received"


def test_store_many_keeps_the_order_and_values(rt, clock):  # type: ignore[no-untyped-def]
    """Ids follow the order given (the worker takes the oldest first), and every
    field comes back as given, a Chinese body and a missing To among them."""
    later = clock.now + timedelta(seconds=1)
    messages = [
        InboundSms(
            message_sid=f"SMorder{n}",
            from_phone=f"+861370000{n:04d}",
            to_phone=None if n % 2 else "+8657000000000",
            body=f"楼道灯坏了，第{n}户",
            params={"NumMedia": str(n)},
            received_at=later if n % 3 else clock.now,
        )
        for n in (5, 3, 9, 1, 7)
    ]
    with unit_of_work(rt.sessions) as session:
        assert store_many(session, messages) == [True] * 5
    with rt.sessions() as session:
        stored = session.scalars(
            select(InboundMessage)
            .where(InboundMessage.message_sid.like("SMorder%"))
            .order_by(InboundMessage.id)
        ).all()
    assert [
        InboundSms(
            message_sid=m.message_sid,
            from_phone=m.from_phone,
            to_phone=m.to_phone,
            body=m.body,
            params=m.params,
            received_at=m.received_at,
        )
        for m in stored
    ] == messages


def test_a_record_survives_its_row_form_and_refuses_a_malformed_one() -> None:
    at = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    sms = _sms("SMrow", at, body="水管爆了")
    assert InboundSms.from_row(sms.as_row()) == sms
    text_row = {**sms.as_row(), "received_at": at.isoformat()}
    assert InboundSms.from_row(text_row) == sms
    with pytest.raises(ValueError):
        InboundSms.from_row({**text_row, "received_at": "2026-12-07T03:00:00"})  # naive
    with pytest.raises(KeyError):
        InboundSms.from_row({k: v for k, v in text_row.items() if k != "body"})
    with pytest.raises(TypeError):
        InboundSms.from_row({**text_row, "params": ["not", "an", "object"]})
