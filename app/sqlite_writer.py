"""SQLite's one write lock, queued for without SQLite's sleeps, webhooks first.

SQLite lets one transaction write at a time (every transaction here begins
`BEGIN IMMEDIATE`, app/db.py). A writer that finds the lock taken gets
SQLITE_BUSY and its busy handler *sleeps* and retries, 1, 2, 5 … up to 100 ms
apart: a webhook waiting behind the worker's transaction wakes long after the
lock was freed, usually after the worker has taken it again for its next
message. Measured (BENCHMARKS.md, "Webhook ingest"): with only the busy
handler, `gridline serve` on SQLite answered 70 webhooks/s closed loop (the
minimal durable endpoint: 420/s) and at 50/s open loop its p99 was 3 s.

So a transaction on a SQLite file first takes a lock that wakes its next
holder at once:

- the threads of one process queue on a condition variable (with SQLite's
  own timeout), first come first served: a thread that lets the lock go and
  asks again at once (the worker's loop, message after message) queues
  behind the thread already waiting (its sender), instead of barging past it;
  in a foreground process, while one of them waits, the holder hands the
  file lock on to it instead of letting it go, so a burst of webhooks drains
  in one go;
- processes queue on `flock(2)` on `<database>-writer.lock`; the kernel drops
  a dead process's lock, so a killed writer never leaves it held;
- a *background* process (the worker: `set_background()`) lets foreground
  writers (webhooks, API, console, CLI: someone waits on them) go first.
  A foreground writer holds a shared lock on `<database>-intent.lock` while
  it waits for the file; a background writer takes that lock exclusively
  (and lets it go) before it queues, so it waits while any foreground writer
  does. A foreground writer waits at most for the transaction in progress.

The one interface is `WriterConnection`, the sqlite3 connection class
`app.db.make_engine` asks for: `begin_immediate()` takes the lock and begins,
`commit()`/`rollback()`/`close()` release it. A foreground writer that has
waited `timeout` seconds gets "database is locked", as SQLite's busy timeout
would have said, and the webhook spools its message.
"""

from __future__ import annotations

import collections
import fcntl
import os
import sqlite3
import threading
import time
from typing import Any

# A foreground writer waiting for another process polls the file lock this
# often: it waits for one transaction in progress (background writers queue
# behind it), a few milliseconds. flock(2) has no timed wait.
_POLL_SECONDS = 0.001

_background = False


def set_background(background: bool = True) -> None:
    """This process writes in the background (the worker): foreground writers first."""
    global _background
    _background = background


class _WriteLock:
    """The write lock of one database file in this process, shared by its connections."""

    def __init__(self, path: str) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        self._write_fd = os.open(f"{path}-writer.lock", flags, 0o600)
        self._intent_fd = os.open(f"{path}-intent.lock", flags, 0o600)
        self._cond = threading.Condition()
        self._held = False  # by a thread of this process
        self._file = False  # this process holds the file lock
        # The threads of this process waiting for it, in the order they came.
        self._queue: collections.deque[object] = collections.deque()

    def acquire(self, timeout: float) -> None:
        with self._cond:
            me = object()
            self._queue.append(me)
            try:
                free = self._cond.wait_for(lambda: not self._held and self._queue[0] is me, timeout)
            finally:
                self._queue.remove(me)
            if not free:
                self._cond.notify_all()  # the next in line may be free to go
                raise sqlite3.OperationalError("database is locked")
            self._held = True
            if self._file:  # handed on by the last holder
                return
        try:
            self._acquire_file(timeout)
        except BaseException:
            with self._cond:
                self._held = False
                self._cond.notify()
            raise
        self._file = True

    def _acquire_file(self, timeout: float) -> None:
        if _background:
            # Wait until no foreground writer of any process waits, then queue.
            fcntl.flock(self._intent_fd, fcntl.LOCK_EX)
            fcntl.flock(self._intent_fd, fcntl.LOCK_UN)
            fcntl.flock(self._write_fd, fcntl.LOCK_EX)
            return
        try:
            fcntl.flock(self._write_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        deadline = time.monotonic() + timeout
        fcntl.flock(self._intent_fd, fcntl.LOCK_SH)  # background writers: wait
        try:
            while True:
                try:
                    fcntl.flock(self._write_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise sqlite3.OperationalError("database is locked") from None
                    time.sleep(_POLL_SECONDS)
        finally:
            fcntl.flock(self._intent_fd, fcntl.LOCK_UN)

    def release(self) -> None:
        with self._cond:
            self._held = False
            # Hand it on to a thread of this process that waits for it, unless
            # this is a background process: its threads (the worker's loop
            # and sender) would pass it between them and shut foreground
            # writers out.
            if _background or not self._queue:
                fcntl.flock(self._write_fd, fcntl.LOCK_UN)
                self._file = False
            self._cond.notify_all()  # the thread whose turn it is takes it


_locks: dict[str, _WriteLock] = {}
_locks_guard = threading.Lock()
# A forked child must not use its parent's locks: their file descriptions
# (and so their flocks) are the parent's, their condition may be held.
os.register_at_fork(after_in_child=_locks.clear)


def _lock_of(database: Any) -> _WriteLock | None:
    """The process's lock of the database file of a `sqlite3.connect` argument;
    None for a memory database."""
    name = os.fsdecode(database)
    if name in ("", ":memory:") or name.startswith("file:"):
        return None  # a URI (SQLAlchemy's memory databases): no file to lock beside
    path = os.path.realpath(name)
    with _locks_guard:
        found = _locks.get(path)
        if found is None:
            found = _locks[path] = _WriteLock(path)
        return found


class WriterConnection(sqlite3.Connection):
    """A sqlite3 connection whose transactions queue for the write lock (module doc)."""

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        self._held = False
        super().__init__(database, *args, **kwargs)
        self._timeout = float(kwargs.get("timeout", 5.0))
        self._lock = _lock_of(database)

    def begin_immediate(self) -> None:
        """Take the write lock, then `BEGIN IMMEDIATE`."""
        if self._lock is not None and not self._held:
            self._lock.acquire(self._timeout)
            self._held = True
        try:
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._release()
            raise

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            if not self.in_transaction:
                self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()

    def _release(self) -> None:
        if self._held:
            self._held = False
            assert self._lock is not None
            self._lock.release()
