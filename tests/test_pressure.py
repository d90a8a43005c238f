"""Webhooks first (app/worker/pressure.py): the group commit marks a burst (its
rate, not the size of one commit), and `gridline serve`'s worker holds
before its next batch while one is recent, for a bounded time."""

from __future__ import annotations

import multiprocessing
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import unit_of_work
from app.inbound.messages import store_many
from app.intake.group_commit import Incoming, IngestWriter
from app.models.messages import InboundMessage
from app.runtime import Runtime
from app.web import create_app
from app.worker import pressure
from app.worker.loop import process_inbound
from app.worker.pressure import BURST_RATE, MOST, QUIET, WINDOW, Pressure
from tests.conftest import Clock
from tests.helpers import RecordingGateway, new_sid


class Ticks:
    """A monotonic clock moved by hand, and a `wait` that moves it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(round(seconds, 6))
        self.now += seconds
        return False


BURST = int(BURST_RATE * WINDOW)  # messages in one window that make a burst


def test_without_a_burst_the_worker_does_not_hold() -> None:
    ticks = Ticks()
    p = Pressure(clock=ticks)
    assert p.hold(ticks.wait) == 0 and ticks.waits == []
    p.mark(BURST - 1)
    assert p.hold(ticks.wait) == 0 and ticks.waits == []


def test_fifty_a_second_in_commits_of_ten_is_no_burst() -> None:
    """A slow disk makes big commits of ordinary traffic: the rate counts."""
    ticks = Ticks()
    p = Pressure(clock=ticks)
    for _ in range(100):  # 20 seconds
        p.mark(10)
        ticks.now += 0.2
        assert p.hold(ticks.wait) == 0
    assert ticks.waits == []


def test_a_burst_spread_over_small_commits_is_marked() -> None:
    ticks = Ticks()
    p = Pressure(clock=ticks)
    per_commit = 4
    for _ in range(BURST // per_commit):  # BURST_RATE a second, in commits of four
        p.mark(per_commit)
        ticks.now += per_commit / BURST_RATE
    assert p.hold(ticks.wait) > 0


def test_after_a_burst_the_worker_holds_until_it_is_quiet() -> None:
    ticks = Ticks()
    p = Pressure(clock=ticks)
    p.mark(BURST)
    ticks.now += 0.03
    held = p.hold(ticks.wait)
    assert ticks.waits == [round(QUIET - 0.03, 6)]
    assert abs(held - (QUIET - 0.03)) < 1e-9
    assert p.hold(ticks.wait) == 0  # quiet now


def test_a_burst_that_never_ends_holds_the_worker_a_bounded_time() -> None:
    ticks = Ticks()
    p = Pressure(clock=ticks)

    def wait(seconds: float) -> bool:
        ticks.wait(seconds)
        p.mark(BURST * 4)  # another big commit while the worker waits
        return False

    p.mark(BURST)
    held = p.hold(wait)
    assert abs(held - MOST) < 1e-9
    assert sum(ticks.waits) <= MOST + 1e-9


def test_a_stopping_worker_stops_holding() -> None:
    ticks = Ticks()
    p = Pressure(clock=ticks)
    p.mark(BURST)
    calls: list[float] = []
    assert p.hold(lambda s: calls.append(s) or True) == 0
    assert len(calls) == 1


def _read(shared: Pressure, out: Any) -> None:
    out.put(shared._at.value)


def test_the_mark_is_seen_from_a_spawned_worker_process() -> None:
    p = Pressure()
    p.mark(BURST)
    context = multiprocessing.get_context("spawn")
    out = context.SimpleQueue()
    child = context.Process(target=_read, args=(p, out))
    child.start()
    try:
        assert out.get() == p._at.value > pressure._NEVER
    finally:
        child.join(30)


def _incoming(clock: Clock, n: int) -> Incoming:
    return Incoming(
        message_sid=new_sid(),
        from_phone=f"+86137100{n:05d}",
        to_phone=None,
        body="楼道灯坏了",
        params={},
        received_at=clock.now,
    )


def test_the_group_commit_marks_a_burst_not_ordinary_traffic(rt: Runtime, clock: Clock) -> None:
    ticks = Ticks()
    p = Pressure(clock=ticks)
    writer = IngestWriter(rt, pressure=p)
    few = [writer.submit(_incoming(clock, n)) for n in range(BURST - 1)]  # one commit
    writer.start()
    try:
        assert all(f.result(timeout=30) for f in few)
        assert p._at.value == pressure._NEVER
        writer.stop()
        ticks.now += WINDOW  # a window of its own
        writer = IngestWriter(rt, pressure=p)  # queued before it runs: one commit
        many = [writer.submit(_incoming(clock, 100 + n)) for n in range(BURST)]
        writer.start()
        assert all(f.result(timeout=30) for f in many)
        assert writer.batches == 1 and p._at.value == ticks.now
    finally:
        writer.stop()


def test_the_worker_holds_before_each_batch(rt: Runtime, clock: Clock) -> None:
    with unit_of_work(rt.sessions) as session:
        store_many(session, [_incoming(clock, 200 + n).row() for n in range(5)])

    def processed() -> int:
        with rt.sessions() as session:
            return (
                session.scalar(select(func.count()).where(InboundMessage.status == "processed"))
                or 0
            )

    seen: list[int] = []
    rt.settings.inbound_batch = 2
    done, failed = process_inbound(rt, now=clock.now, hold=lambda: seen.append(processed()))
    assert (done, failed) == (5, 0)
    assert seen == [0, 2, 4, 5]  # before each batch, and before finding none left


def test_the_server_s_group_commit_and_worker_share_one_mark(rt: Runtime) -> None:
    """`gridline serve` wires the two together; a web process without a
    worker marks nothing."""
    app = create_app(runtime=rt, gateway=RecordingGateway(), worker_process=False)
    with TestClient(app):
        shared = app.state.ingest._pressure
        assert isinstance(shared, Pressure) and app.state.worker._pressure is shared
    alone = create_app(runtime=rt, gateway=RecordingGateway(), start_worker=False)
    with TestClient(alone):
        assert alone.state.ingest._pressure is None
