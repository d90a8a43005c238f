"""Group commit for the inbound webhook.

Every webhook must have its message stored before it answers. Done one
transaction per request, concurrent webhooks queue for the database's write
lock (SQLite has one writer) or pay a commit each (PostgreSQL flushes its
WAL per commit), and a burst costs a commit per message. Here one thread,
the writer, takes whatever messages are waiting and stores them in a single
transaction: under load a commit carries dozens of messages, at rest one.

Each request waits on its own future, resolved after the commit that stored
its message (or with the error that prevented it), so "stored before the
answer" holds per message. A webhook waits on an asyncio future (`store`):
the writer hands a batch's results to the event loop in one call, one
wake-up of the loop per batch rather than one per message. A batch that
fails on a bad row is retried one message per transaction, so one bad
message fails only itself; a database that is unreachable fails the whole
batch, and each waiting request then takes the spool path
(app/intake/webhooks.py).

On SQLite the writer never waits for the write lock. The worker's
transactions hold it for tens of milliseconds at a time (one message's
routing, at least), and a batch queued behind one would hold every webhook
in it as long. So a batch begins with `no_wait()`; if the lock is taken, the
batch is appended to a spill file (app/intake/spool.py's format, one write and one
fsync: as durable as a commit) and answered. A second thread, the replayer,
then waits for the lock like any eager writer (so the worker commits and
lets it in at its next message) and stores what was spilled. Order is kept:
while anything spilled waits, later batches are spilled too. The spill is
the web server's (the `spill/` folder of the spool): the worker never locks
its file, so a worker descheduled at a bad moment cannot stall it. A spill
left by a crash is replayed at the next start-up (app/web.py). A
spilled message is answered as new: whether it repeats a stored MessageSid
is decided at replay, which stores it once either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.db import database_unavailable
from app.inbound.messages import store_many
from app.intake.spool import Spool
from app.runtime import Runtime
from app.sqlite_lock import WriteLockBusy, no_wait
from app.worker.pressure import Pressure

log = logging.getLogger("gridline.ingest")

MAX_BATCH = 256  # messages in one transaction at most
SPILL_DIR = "spill"  # the spill's folder, inside the spool's


@dataclass
class Incoming:
    """One webhook's message and the future its request waits on."""

    message_sid: str
    from_phone: str
    to_phone: str | None
    body: str
    params: dict[str, Any]
    received_at: datetime
    # Resolved with the outcome: `done` for `submit`, `waiter` (on its event
    # loop) for `store`.
    done: Future[bool] | None = None
    waiter: asyncio.Future[bool] | None = None

    def row(self) -> dict[str, Any]:
        """The message as `store_many` and `Spool.append_many` take it."""
        return {
            "message_sid": self.message_sid,
            "from_phone": self.from_phone,
            "to_phone": self.to_phone,
            "body": self.body,
            "params": self.params,
            "received_at": self.received_at,
        }


# A message, and what became of it: stored (True: new, False: its SID was
# already stored), or the error that kept it from being stored.
Outcome = tuple[Incoming, bool | None, BaseException | None]


class IngestWriter:
    """Stores webhook messages in batches on one thread; `submit` from any thread."""

    def __init__(
        self,
        rt: Runtime,
        *,
        max_batch: int = MAX_BATCH,
        spill: Spool | None = None,
        replayed: Callable[[], None] | None = None,
        pressure: Pressure | None = None,
    ) -> None:
        self._rt = rt
        # Told the size of each commit: a burst of them holds `gridline
        # serve`'s worker back a moment (app/worker/pressure.py).
        self._pressure = pressure
        # Told when spilled messages have been stored: the webhook woke the
        # worker when it spilled them, and the worker may have found nothing yet.
        self._replayed = replayed or (lambda: None)
        self._max_batch = max_batch
        # SQLite: where a batch goes instead of waiting for the write lock.
        sqlite = rt.engine.dialect.name == "sqlite"
        self._spill = spill if sqlite and rt.settings.ingest_spill else None
        self.spilled = 0  # messages spilled (tests, logs)
        self._queue: queue.SimpleQueue[Incoming | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="gridline-ingest", daemon=True)
        self._replayer = threading.Thread(
            target=self._replay_loop, name="gridline-ingest-replay", daemon=True
        )
        self._spilt_event = threading.Event()  # set: the replayer has work
        self.batches = 0  # transactions committed (tests, logs)
        self._settled: list[Outcome] = []  # the current batch's, for `_hand_over`
        self._stopped = False
        # `submit` and `stop` under one lock: nothing is queued after the stop
        # marker, so every accepted message is stored before the thread ends.
        self._submitting = threading.Lock()

    def start(self) -> None:
        self._thread.start()
        if self._spill is not None:
            self._replayer.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Store what was submitted, then end the thread."""
        with self._submitting:
            self._stopped = True
            self._queue.put(None)
        self._thread.join(timeout)
        if self._replayer.is_alive():
            self._spilt_event.set()  # one last replay, then it sees _stopped
            self._replayer.join(timeout)

    def submit(self, message: Incoming) -> Future[bool]:
        """Queue `message`; the future resolves to True (stored), False (its SID
        was already stored) or the exception that kept it from being stored.
        Messages submitted before `start` are stored once it runs."""
        message.done = Future()
        if not self._put(message):
            message.done.set_exception(RuntimeError("ingest writer is stopped"))
        return message.done

    async def store(self, message: Incoming) -> bool:
        """`submit` for a coroutine on an event loop: True (stored), False (its
        SID was already stored), or raises what kept it from being stored."""
        message.waiter = asyncio.get_running_loop().create_future()
        if not self._put(message):
            raise RuntimeError("ingest writer is stopped")
        return await message.waiter

    def _put(self, message: Incoming) -> bool:
        with self._submitting:
            if not self._stopped:
                self._queue.put(message)
                return True
        return False

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            self._settled = []
            self._store(batch)
            if self._pressure is not None:
                self._pressure.mark(len(batch))
            self._hand_over(self._settled)

    def _settle(
        self, message: Incoming, created: bool | None = None, error: BaseException | None = None
    ) -> None:
        """Record a message's outcome; `_hand_over` tells its waiter."""
        self._settled.append((message, created, error))

    @staticmethod
    def _hand_over(settled: list[Outcome]) -> None:
        """Resolve the batch's futures: `submit`'s here, `store`'s waiters on
        their event loop, with one call per loop for the whole batch."""
        by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
        for outcome in settled:
            message, created, error = outcome
            if message.waiter is not None:
                by_loop.setdefault(message.waiter.get_loop(), []).append(outcome)
            elif message.done is not None:
                if error is not None:
                    message.done.set_exception(error)
                else:
                    message.done.set_result(bool(created))
        for loop, outcomes in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits
                loop.call_soon_threadsafe(_wake_waiters, outcomes)

    def _store(self, batch: list[Incoming]) -> None:
        if self._spill is None:
            self._commit(batch)
            return
        # SQLite: store the batch if the write lock is free and nothing spilled
        # earlier still waits in the spool; else spill it there.
        left = batch
        if not self._spill.pending():  # else earlier messages wait there: after them
            with no_wait():
                left = self._commit(batch)
        if left:
            self._spill_batch(left, self._spill)
            self._spilt_event.set()

    def _replay_loop(self) -> None:
        """The replayer: store what was spilled, waiting for the lock as an
        eager writer does (the worker's batch commits early for it)."""
        assert self._spill is not None
        while True:
            # A failed replay is tried again each second while anything waits.
            self._spilt_event.wait(1.0 if self._spill.pending() else None)
            self._spilt_event.clear()
            try:
                # A few rounds (batches spilled meanwhile); a file another
                # replayer holds is left to it, looked at again in a second.
                for _ in range(3):
                    if not self._spill.pending():
                        break
                    if self._spill.replay(self._rt.sessions):
                        self._replayed()
            except Exception as exc:  # database trouble: the next spill or start-up retries
                log.warning("spill replay failed (%s)", exc.__class__.__name__)
            if self._stopped:
                return

    def _spill_batch(self, batch: list[Incoming], spool: Spool) -> None:
        try:
            spool.append_many([m.row() for m in batch])
        except Exception as exc:  # SpoolUnavailable: the webhook answers 503
            for message in batch:
                self._settle(message, error=exc)
            return
        self.spilled += len(batch)
        log.debug("write lock taken: %d inbound messages spilled to the spool", len(batch))
        for message in batch:
            self._settle(message, True)

    def _commit(self, batch: list[Incoming]) -> list[Incoming]:
        """Store the batch and resolve its futures; returns the messages left
        unstored because the write lock was taken (inside `no_wait()` only)."""
        try:
            results = self._transaction(batch)
        except WriteLockBusy:
            return batch  # nothing written
        except Exception as exc:
            if database_unavailable(exc) or len(batch) == 1:
                for message in batch:
                    self._settle(message, error=exc)
                return []
            log.warning(
                "a batch of %d inbound messages failed; storing them one by one", len(batch)
            )
            for n, message in enumerate(batch):
                if self._commit([message]):
                    return batch[n:]
            return []
        for message, created in zip(batch, results, strict=True):
            self._settle(message, created)
        return []

    def _transaction(self, batch: list[Incoming]) -> list[bool]:
        rows = [m.row() for m in batch]
        # A Core connection, not an ORM session: nothing here needs one.
        with self._rt.engine.begin() as connection:
            results = store_many(connection, rows)
        self.batches += 1
        return results


def _wake_waiters(outcomes: list[Outcome]) -> None:
    """On the event loop: resolve the waiters of a batch (a webhook whose client
    went away has had its waiter cancelled)."""
    for message, created, error in outcomes:
        waiter = message.waiter
        if waiter is None or waiter.done():
            continue
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(bool(created))
