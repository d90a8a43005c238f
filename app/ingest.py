"""Group commit for the inbound webhook.

Every webhook must have its message stored before it answers. Done one
transaction per request, concurrent webhooks queue for the database's write
lock (SQLite has one writer) or pay a commit each (PostgreSQL flushes its
WAL per commit), and a burst costs a commit per message. Here one thread,
the writer, takes whatever messages are waiting and stores them in a single
transaction: under load a commit carries dozens of messages, at rest one.

Each request waits on its own future, resolved after the commit that stored
its message (or with the error that prevented it), so "stored before the
answer" holds per message. A batch that fails on a bad row is retried one
message per transaction, so one bad message fails only itself; a database
that is unreachable fails the whole batch, and each waiting request then
takes the spool path (app/web.py).
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.db import database_unavailable
from app.inbound import store_many
from app.runtime import Runtime

log = logging.getLogger("gridline.ingest")

MAX_BATCH = 256  # messages in one transaction at most


@dataclass
class Incoming:
    """One webhook's message and the future its request waits on."""

    message_sid: str
    from_phone: str
    to_phone: str | None
    body: str
    params: dict[str, Any]
    received_at: datetime
    done: Future[bool] = field(default_factory=Future)


class IngestWriter:
    """Stores webhook messages in batches on one thread; `submit` from any thread."""

    def __init__(self, rt: Runtime, *, max_batch: int = MAX_BATCH) -> None:
        self._rt = rt
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Incoming | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="gridline-ingest", daemon=True)
        self.batches = 0  # transactions committed (tests, logs)
        self._stopped = False

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Store what was submitted, then end the thread."""
        self._stopped = True
        self._queue.put(None)
        self._thread.join(timeout)

    def submit(self, message: Incoming) -> Future[bool]:
        """Queue `message`; the future resolves to True (stored), False (its SID
        was already stored) or the exception that kept it from being stored.
        Messages submitted before `start` are stored once it runs."""
        if self._stopped:
            message.done.set_exception(RuntimeError("ingest writer is stopped"))
        else:
            self._queue.put(message)
        return message.done

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
            self._store(batch)

    def _store(self, batch: list[Incoming]) -> None:
        try:
            results = self._transaction(batch)
        except Exception as exc:
            if database_unavailable(exc) or len(batch) == 1:
                for message in batch:
                    message.done.set_exception(exc)
                return
            log.warning(
                "a batch of %d inbound messages failed; storing them one by one", len(batch)
            )
            for message in batch:
                self._store([message])
            return
        for message, created in zip(batch, results, strict=True):
            message.done.set_result(created)

    def _transaction(self, batch: list[Incoming]) -> list[bool]:
        rows = [
            {
                "message_sid": m.message_sid,
                "from_phone": m.from_phone,
                "to_phone": m.to_phone,
                "body": m.body,
                "params": m.params,
                "received_at": m.received_at,
            }
            for m in batch
        ]
        with self._rt.sessions() as session, session.begin():
            results = store_many(session, rows)
        self.batches += 1
        return results
