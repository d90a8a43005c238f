"""The worker sends the outbox on a thread of its own (app/worker/loop.py `Sender`):
a forward leaves as soon as the transaction that decided it commits, while
the pass that decided it goes on with the next message."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from app.db import unit_of_work
from app.models.deadlines import ScheduledStep
from app.models.messages import InboundMessage, OutboundMessage
from app.runtime import Runtime
from app.worker.loop import Sender, WorkerThread, process_inbound, run_once
from sms.gateway import OutgoingSms, SendResult
from tests.conftest import Clock, make_settings
from tests.factories import WORKER_A, make_city, make_resident
from tests.helpers import RecordingGateway, text_in, wait_for

RESIDENTS = [f"+861370000100{i}" for i in range(3)]


def _runtime(db_url: str, clock: Clock, **overrides: object) -> Runtime:
    values: dict[str, object] = {"worker_poll_seconds": 30.0}
    return Runtime.build(make_settings(db_url, **{**values, **overrides}), clock=clock)


@pytest.fixture
def one_by_one(db_url: str, clock: Clock) -> Iterator[Runtime]:
    """A runtime with three registered residents."""
    runtime = _runtime(db_url, clock)
    with unit_of_work(runtime.sessions) as session:
        city = make_city(session)
        for phone in RESIDENTS:
            make_resident(session, phone=phone, grid=city.grid1, address="翁山新村3幢")
    try:
        yield runtime
    finally:
        runtime.close()


def _text_in(rt: Runtime, *senders: str) -> None:
    for sender in senders:
        text_in(rt, sender, "楼道灯坏了")


def _unprocessed(rt: Runtime) -> int:
    with rt.sessions() as session:
        count = select(func.count()).where(InboundMessage.processed_at.is_(None))
        return int(session.scalar(count) or 0)


def _statuses(rt: Runtime) -> dict[str, int]:
    with rt.sessions() as session:
        rows = session.execute(
            select(OutboundMessage.status, func.count()).group_by(OutboundMessage.status)
        )
        return {status: int(n) for status, n in rows}


def test_the_inbound_stage_tells_after_each_commit(one_by_one: Runtime, clock: Clock) -> None:
    _text_in(one_by_one, *RESIDENTS)
    told: list[int] = []
    done = process_inbound(
        one_by_one, now=clock.now, committed=lambda: told.append(_unprocessed(one_by_one))
    )
    assert done == (3, 0)
    # Told after each message's commit, with the later ones still waiting.
    assert told == [2, 1, 0]
    assert process_inbound(one_by_one, now=clock.now, committed=lambda: told.append(-1)) == (0, 0)
    assert told == [2, 1, 0]  # nothing committed, nothing told


def test_a_pass_without_sending_leaves_the_outbox_to_the_sender(
    one_by_one: Runtime, clock: Clock
) -> None:
    gateway = RecordingGateway()
    _text_in(one_by_one, RESIDENTS[0])
    told: list[bool] = []
    result = run_once(
        one_by_one, gateway, now=clock.now, send=False, committed=lambda: told.append(True)
    )
    assert result.inbound == 1 and told == [True]
    assert gateway.sent == [] and result.sent == {}
    pending = _statuses(one_by_one)
    assert pending.get("pending", 0) >= 2 and set(pending) == {"pending"}  # forward + ack

    sender = Sender(one_by_one, gateway)
    sender.start()
    try:
        sender.poke()
        wait_for(lambda: _statuses(one_by_one) == {"sent": pending["pending"]}, what="sent")
    finally:
        sender.stop()
    assert not sender._thread.is_alive()
    assert len(gateway.sent) == pending["pending"]  # each once
    assert any(sms.to == WORKER_A for sms in gateway.sent)
    assert any(sms.to == RESIDENTS[0] for sms in gateway.sent)


def test_a_forward_leaves_while_the_pass_goes_on(one_by_one: Runtime, clock: Clock) -> None:
    """The first message's forward reaches the gateway while the inbound stage,
    told of its commit, has not yet taken the second message."""
    gateway = RecordingGateway()
    _text_in(one_by_one, *RESIDENTS[:2])
    sender = Sender(one_by_one, gateway)
    sender.start()
    seen: list[tuple[int, int]] = []

    def committed() -> None:
        sender.poke()
        forwards = len(seen) + 1  # one on-duty member per case
        wait_for(
            lambda: sum(sms.to == WORKER_A for sms in gateway.sent) >= forwards,
            what="the forward of the message just committed",
        )
        seen.append((_unprocessed(one_by_one), forwards))

    try:
        assert process_inbound(one_by_one, now=clock.now, committed=committed) == (2, 0)
    finally:
        sender.stop()
    # The first forward was at the gateway while the second message still waited.
    assert seen == [(1, 1), (0, 2)]


class _ThreadRecordingGateway(RecordingGateway):
    """Sends may overlap; remembers the thread each send ran on."""

    concurrent = True

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def send(self, sms: OutgoingSms) -> SendResult:
        with self._lock:
            self.threads.append(threading.current_thread())
            return super().send(sms)


def test_the_sender_keeps_its_sending_threads_from_pass_to_pass(
    one_by_one: Runtime, clock: Clock
) -> None:
    """Sends overlap on the sender's own threads, started once: a pass does
    not start (and stop) threads of its own."""
    gateway = _ThreadRecordingGateway()
    sender = Sender(one_by_one, gateway)
    sender.start()
    alive_after: list[bool] = []
    used: set[threading.Thread] = set()
    try:
        for resident in RESIDENTS[:2]:
            _text_in(one_by_one, resident)
            run_once(one_by_one, gateway, now=clock.now, send=False)
            before, passes = len(gateway.threads), sender.passes
            sender.poke()
            wait_for(lambda: set(_statuses(one_by_one)) == {"sent"}, what="sent")
            # The pass that sent is over (it leased all that was due: drained).
            wait_for(lambda: sender.passes >= passes + 1, what="the pass to end")  # noqa: B023
            this_round = set(gateway.threads[before:])
            alive_after.append(all(t.is_alive() for t in this_round))
            used |= this_round
    finally:
        sender.stop()
    assert all(t.name.startswith("gridline-send") for t in used)  # sends overlapped
    assert alive_after == [True, True]  # its threads outlive the passes
    assert not any(t.is_alive() for t in used)  # stopped with the sender


def test_a_woken_worker_looks_at_deadlines_once_a_poll_interval(
    one_by_one: Runtime, clock: Clock
) -> None:
    """Woken for every webhook, the worker processes the text at once but
    fires deadline steps only once its poll interval has passed."""
    seconds = [100.0]
    one_by_one.timer = lambda: seconds[0]
    worker = WorkerThread(one_by_one, RecordingGateway())

    def fired() -> int:
        with one_by_one.sessions() as session:
            done = select(func.count()).where(
                ScheduledStep.kind == "claim_overdue", ScheduledStep.outcome.is_not(None)
            )
            return int(session.scalar(done) or 0)

    def one_pass() -> None:
        before = worker.passes
        worker.wake()
        wait_for(lambda: worker.passes > before or None, what="a worker pass")

    _text_in(one_by_one, RESIDENTS[0])
    worker.start()
    try:
        # The first pass (the text, then the deadlines at the clock's time) is over.
        wait_for(lambda: worker.passes >= 1 or None, what="the first pass")
        assert _unprocessed(one_by_one) == 0
        clock.advance(hours=3)  # the case's claim deadline has passed
        _text_in(one_by_one, RESIDENTS[1])
        one_pass()
        assert _unprocessed(one_by_one) == 0  # the new text: at once
        assert fired() == 0  # the deadline: not in this pass
        seconds[0] += 30.0  # the poll interval
        one_pass()
        assert fired() == 1
    finally:
        worker.stop()
