"""A worker pass hands over from inbound processing to sending after a while."""

from __future__ import annotations

from sqlalchemy import func, select

from app.db import unit_of_work
from app.intake.store import InboundSms, store
from app.models.messages import InboundMessage
from app.worker.loop import process_inbound
from tests.factories import make_city


def _store(rt, clock, count: int) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(rt.sessions) as session:
        for i in range(count):
            store(
                session,
                InboundSms(
                    message_sid=f"SM{i:032d}",
                    from_phone=f"+86137{i:08d}",
                    to_phone="+8657000000000",
                    body="楼道灯坏了",
                    params={},
                    received_at=clock.now,
                ),
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


def test_a_pass_cut_short_goes_on_at_once_and_a_drained_one_waits(db_url, clock):  # type: ignore[no-untyped-def]
    from app.runtime import Runtime
    from app.worker.loop import run_once
    from tests.conftest import make_settings
    from tests.helpers import RecordingGateway, did_work, text_in

    gateway = RecordingGateway()
    # No time for inbound: each pass takes one message and says more may wait.
    rt = Runtime.build(make_settings(db_url, inbound_pass_seconds=1e-9), clock=clock)
    try:
        with unit_of_work(rt.sessions) as session:
            make_city(session)
        _store(rt, clock, 2)
        first = run_once(rt, gateway, now=clock.now, send=False)
        assert (first.inbound, first.cut_short, first.more) == (1, True, True)
    finally:
        rt.close()
    # Time enough: the pass drains what is left and the worker may wait.
    rt = Runtime.build(make_settings(db_url, inbound_pass_seconds=60), clock=clock)
    try:
        drained = run_once(rt, gateway, now=clock.now, send=False)
        assert (drained.inbound, drained.cut_short, drained.more) == (1, False, False)
        assert did_work(drained)  # it did work, and still need not go on
        # Sending in the pass: a pass that sent goes on (more may be due).
        text_in(rt, "+8613799999999", "楼道灯坏了")
        sending = run_once(rt, gateway, now=clock.now)
        assert sending.sent.get("sent") and sending.more and not sending.cut_short
    finally:
        rt.close()
