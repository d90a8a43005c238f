"""A worker pass hands over from inbound processing to sending after a while."""

from __future__ import annotations

from sqlalchemy import func, select

from app.db import unit_of_work
from app.inbound import store_inbound
from app.models import InboundMessage
from app.worker import process_inbound
from tests.factories import make_city


def _store(rt, clock, count: int) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(rt.sessions) as session:
        for i in range(count):
            store_inbound(
                session,
                message_sid=f"SM{i:032d}",
                from_phone=f"+86137{i:08d}",
                to_phone="+8657000000000",
                body="楼道灯坏了",
                params={},
                now=clock.now,
            )


def _unprocessed(rt) -> int:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        return int(
            session.scalar(select(func.count()).where(InboundMessage.processed_at.is_(None))) or 0
        )


def test_inbound_stage_stops_after_its_time_and_goes_on_next_pass(rt, clock):
    with unit_of_work(rt.sessions) as session:
        make_city(session)
    _store(rt, clock, 3)
    # No time at all: one message per call (never none, so a pass always progresses).
    assert process_inbound(rt, now=clock.now, max_seconds=0) == (1, 0)
    assert _unprocessed(rt) == 2
    assert process_inbound(rt, now=clock.now, max_seconds=0) == (1, 0)
    # Time enough: the rest.
    assert process_inbound(rt, now=clock.now, max_seconds=60) == (1, 0)
    assert _unprocessed(rt) == 0
    assert process_inbound(rt, now=clock.now, max_seconds=0) == (0, 0)
