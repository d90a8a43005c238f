"""Group commit for the webhook (app/intake/group_commit.py): many messages, one transaction,
each request answered only after the commit that stored its message."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.db import unit_of_work
from app.inbound.messages import store_many
from app.intake.group_commit import SPILL_DIR, Incoming, IngestWriter
from app.intake.spool import Spool
from app.models.messages import InboundMessage
from app.runtime import Runtime
from app.sqlite_lock import polite_writer
from app.web import create_app
from tests.conftest import make_settings
from tests.helpers import RecordingGateway, new_sid


def _incoming(clock, sid: str | None = None, sender: str = "+8613700000001") -> Incoming:  # type: ignore[no-untyped-def]
    return Incoming(
        message_sid=sid or new_sid(),
        from_phone=sender,
        to_phone="+8657000000000",
        body="楼道灯坏了",
        params={},
        received_at=clock.now,
    )


def _stored(rt, sids: list[str]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        rows = session.execute(
            select(InboundMessage.message_sid, func.count())
            .where(InboundMessage.message_sid.in_(sids))
            .group_by(InboundMessage.message_sid)
        ).all()
    return {sid: count for sid, count in rows}


def test_messages_waiting_together_are_stored_in_one_transaction(rt, clock):
    writer = IngestWriter(rt)
    messages = [_incoming(clock, sender=f"+86137000{n:05d}") for n in range(40)]
    futures = [writer.submit(m) for m in messages]  # queued before the writer runs
    writer.start()
    try:
        assert [f.result(timeout=30) for f in futures] == [True] * 40
    finally:
        writer.stop()
    assert writer.batches == 1
    assert _stored(rt, [m.message_sid for m in messages]) == {m.message_sid: 1 for m in messages}


def test_a_sid_delivered_twice_is_stored_once_within_and_across_batches(rt, clock):
    sid = new_sid()
    writer = IngestWriter(rt)
    first, again = writer.submit(_incoming(clock, sid)), writer.submit(_incoming(clock, sid))
    writer.start()
    try:
        assert (first.result(timeout=30), again.result(timeout=30)) == (True, False)
        assert writer.submit(_incoming(clock, sid)).result(timeout=30) is False
    finally:
        writer.stop()
    assert _stored(rt, [sid]) == {sid: 1}


def test_a_bad_message_fails_alone_and_its_batch_is_stored(rt, clock):
    writer = IngestWriter(rt)
    good = [_incoming(clock), _incoming(clock)]
    bad = _incoming(clock)
    bad.from_phone = None  # type: ignore[assignment]  # NOT NULL
    futures: list[Future[bool]] = [writer.submit(m) for m in (good[0], bad, good[1])]
    writer.start()
    try:
        assert futures[0].result(timeout=30) is True
        assert futures[2].result(timeout=30) is True
        with pytest.raises(IntegrityError):
            futures[1].result(timeout=30)
    finally:
        writer.stop()
    sids = [m.message_sid for m in (*good, bad)]
    assert _stored(rt, sids) == {good[0].message_sid: 1, good[1].message_sid: 1}


def test_a_stopped_writer_refuses_instead_of_dropping(rt, clock):
    writer = IngestWriter(rt)
    writer.start()
    writer.stop()
    with pytest.raises(RuntimeError):
        writer.submit(_incoming(clock)).result(timeout=5)


def _through_the_loop(
    writer: IngestWriter,
    messages: list[Incoming],
    *,
    meanwhile: Callable[[asyncio.AbstractEventLoop, list[asyncio.Future[bool]]], object],
) -> list[object]:
    """Queue `messages` with `store` from one event loop, run `meanwhile`, then
    start the writer; each message's outcome (a result or an exception)."""

    async def scenario() -> list[object]:
        tasks = [asyncio.ensure_future(writer.store(m)) for m in messages]
        await asyncio.sleep(0)  # every task has queued its message: one batch
        meanwhile(asyncio.get_running_loop(), tasks)
        writer.start()
        return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        return asyncio.run(scenario())
    finally:
        writer.stop()


def test_webhooks_waiting_on_the_loop_are_woken_once_per_batch(rt, clock):
    """`store` (the webhook's way in): each coroutine gets its own outcome, new,
    repeated or failed, and the writer wakes the event loop once for a whole
    batch, not once per message."""
    writer = IngestWriter(rt)
    repeated = new_sid()
    good = [_incoming(clock, sender=f"+86137100{n:05d}") for n in range(30)]
    twice = [_incoming(clock, repeated), _incoming(clock, repeated)]
    bad = _incoming(clock)
    bad.from_phone = None  # type: ignore[assignment]  # NOT NULL: fails alone
    wakes = 0

    def count_wakes(loop: asyncio.AbstractEventLoop, _tasks: list[asyncio.Future[bool]]) -> None:
        call_soon_threadsafe = loop.call_soon_threadsafe

        def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal wakes
            wakes += 1
            return call_soon_threadsafe(*args, **kwargs)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]

    outcomes = _through_the_loop(writer, [*good, *twice, bad], meanwhile=count_wakes)
    assert outcomes[:30] == [True] * 30
    assert outcomes[30:32] == [True, False]
    assert isinstance(outcomes[32], IntegrityError)
    # The batch failed on its bad row; its 32 good messages went one by one.
    assert writer.batches == 32
    assert wakes == 1
    assert _stored(rt, [m.message_sid for m in good]) == {m.message_sid: 1 for m in good}


def test_a_webhook_that_gave_up_does_not_keep_the_others_waiting(rt, clock):
    """A client that went away cancels its request's waiter; the rest of its
    batch is still answered, and its message is stored all the same."""
    writer = IngestWriter(rt)
    messages = [_incoming(clock, sender=f"+86137200{n:05d}") for n in range(3)]
    outcomes = _through_the_loop(writer, messages, meanwhile=lambda _loop, tasks: tasks[1].cancel())
    assert outcomes[0] is True and outcomes[2] is True
    assert isinstance(outcomes[1], asyncio.CancelledError)
    assert _stored(rt, [m.message_sid for m in messages]) == {m.message_sid: 1 for m in messages}


def test_store_on_a_stopped_writer_raises(rt, clock):
    writer = IngestWriter(rt)
    writer.start()
    writer.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        asyncio.run(writer.store(_incoming(clock)))


def test_store_many_says_which_rows_were_new(rt, clock):
    rows = [
        {
            "message_sid": sid,
            "from_phone": "+8613700000001",
            "to_phone": None,
            "body": "x",
            "params": {"Latitude": "30.0"},
            "received_at": clock.now,
        }
        for sid in ("SMa", "SMb", "SMa")
    ]
    with unit_of_work(rt.sessions) as session:
        assert store_many(session, rows) == [True, True, False]
    with unit_of_work(rt.sessions) as session:
        assert store_many(session, rows[:2]) == [False, False]
        stored = session.scalar(select(InboundMessage).where(InboundMessage.message_sid == "SMa"))
        assert stored is not None and stored.params == {"Latitude": "30.0"}
        assert stored.status == "received"


def test_store_many_keeps_the_rows_order_and_values(rt, clock):
    """Ids follow the rows' order (the worker takes the oldest first), and every
    field comes back as given, a Chinese body and a missing To among them."""
    later = clock.now + timedelta(seconds=1)
    rows = [
        {
            "message_sid": f"SMorder{n}",
            "from_phone": f"+861370000{n:04d}",
            "to_phone": None if n % 2 else "+8657000000000",
            "body": f"楼道灯坏了，第{n}户",
            "params": {"NumMedia": str(n)},
            "received_at": later if n % 3 else clock.now,
        }
        for n in (5, 3, 9, 1, 7)
    ]
    with unit_of_work(rt.sessions) as session:
        assert store_many(session, rows) == [True] * 5
    with rt.sessions() as session:
        stored = session.scalars(
            select(InboundMessage)
            .where(InboundMessage.message_sid.like("SMorder%"))
            .order_by(InboundMessage.id)
        ).all()
    assert [
        {
            "message_sid": m.message_sid,
            "from_phone": m.from_phone,
            "to_phone": m.to_phone,
            "body": m.body,
            "params": m.params,
            "received_at": m.received_at,
        }
        for m in stored
    ] == rows


@pytest.fixture
def srt(sqlite_template: Path, tmp_path: Path, clock) -> Iterator[Runtime]:  # type: ignore[no-untyped-def]
    """A runtime on SQLite only: the spill is SQLite's."""
    path = tmp_path / "gridline.db"
    shutil.copyfile(sqlite_template, path)
    settings = make_settings(f"sqlite:///{path}", spool_dir=tmp_path / "spool")
    runtime = Runtime.build(settings, clock=clock)
    try:
        yield runtime
    finally:
        runtime.close()


@contextmanager
def _worker_transaction(rt: Runtime) -> Iterator[None]:
    """Another thread holds the write lock in an open transaction, as the
    worker (a polite writer) does while it routes a message."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with polite_writer(), rt.sessions() as session, session.begin():
            session.execute(select(1))  # BEGIN IMMEDIATE: the lock is ours
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(30)
    try:
        yield
    finally:
        release.set()
        thread.join(30)


def _ids(rt: Runtime, sids: list[str]) -> list[int]:
    with rt.sessions() as session:
        found = dict(
            session.execute(
                select(InboundMessage.message_sid, InboundMessage.id).where(
                    InboundMessage.message_sid.in_(sids)
                )
            ).all()
        )
    return [found[sid] for sid in sids]


def test_on_sqlite_a_free_lock_stores_directly(srt, clock, tmp_path):
    spill = Spool(tmp_path / "spool" / SPILL_DIR)
    writer = IngestWriter(srt, spill=spill)
    writer.start()
    try:
        sid = new_sid()
        assert writer.submit(_incoming(clock, sid)).result(timeout=30) is True
    finally:
        writer.stop()
    assert writer.spilled == 0 and not spill.pending()
    assert _stored(srt, [sid]) == {sid: 1}


def test_on_sqlite_a_batch_finding_the_lock_taken_is_spilled_answered_and_stored_in_order(
    srt, clock, tmp_path
):
    spill = Spool(tmp_path / "spool" / SPILL_DIR)
    writer = IngestWriter(srt, spill=spill)
    writer.start()
    sids = [new_sid() for _ in range(3)]
    try:
        with _worker_transaction(srt):
            # Answered while the worker still holds the lock: durable in the spill.
            futures = [writer.submit(_incoming(clock, sid)) for sid in sids]
            assert [f.result(timeout=30) for f in futures] == [True, True, True]
            again = writer.submit(_incoming(clock, sids[0]))  # a gateway's retry
            assert again.result(timeout=30) is True  # decided at replay
            assert writer.spilled == 4
            assert spill.count_lines() == 4
        # The worker let go: the replayer stores the spill; a later message
        # comes after it whether it is spilled too or stored directly.
        later = new_sid()
        assert writer.submit(_incoming(clock, later)).result(timeout=30) is True
    finally:
        writer.stop()  # the replayer's last replay
    assert writer.spilled >= 4
    assert not spill.pending()
    assert _stored(srt, [*sids, later]) == {sid: 1 for sid in [*sids, later]}
    ids = _ids(srt, [*sids, later])
    assert ids == sorted(ids)  # one sender's messages in the order they came


def test_the_replayer_wakes_the_worker_once_the_spill_is_stored(srt, clock, tmp_path):
    # The webhook woke the worker when it answered; the worker may have found
    # nothing then. Told again once stored, it finds the messages.
    spill = Spool(tmp_path / "spool" / SPILL_DIR)
    stored_when_told: list[dict[str, int]] = []
    told = threading.Event()
    sids = [new_sid() for _ in range(2)]

    def replayed() -> None:
        stored_when_told.append(_stored(srt, sids))
        told.set()

    writer = IngestWriter(srt, spill=spill, replayed=replayed)
    writer.start()
    try:
        with _worker_transaction(srt):
            futures = [writer.submit(_incoming(clock, sid)) for sid in sids]
            assert [f.result(timeout=30) for f in futures] == [True, True]
            assert not told.is_set()  # spilled, not stored yet
        assert told.wait(30)
    finally:
        writer.stop()
    assert stored_when_told[0] == {sid: 1 for sid in sids}


def test_a_spill_left_by_a_crash_is_stored_at_start_up(srt, clock, tmp_path):
    spill = Spool(srt.settings.spool_path / SPILL_DIR)
    sid = new_sid()
    spill.append(
        message_sid=sid,
        from_phone="+8613700000001",
        to_phone=None,
        body="楼道灯坏了",
        params={},
        received_at=clock.now,
    )
    with TestClient(create_app(runtime=srt, gateway=RecordingGateway(), start_worker=False)):
        pass
    assert _stored(srt, [sid]) == {sid: 1}
    assert not spill.pending()
