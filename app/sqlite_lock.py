"""SQLite's one write lock, handed from writer to writer without polling.

SQLite lets one transaction write at a time. A writer that finds the lock
taken is told SQLITE_BUSY and its busy handler *sleeps* and retries (1, 2,
5 … 100 ms apart): a webhook behind a worker transaction wakes up long after
the lock was freed, often after the worker took it again. Under load that
starves the webhook for seconds.

So every transaction on a SQLite file first takes this lock: a condition
variable between the threads of one process, `flock(2)` on a file beside the
database between processes. Both wake the next writer the moment the lock
is released. Writers are *eager* (webhooks, API, console: a person or a
gateway waits on them) or *polite* (the background worker, via
`polite_writer`): a polite writer lets eager writers that are waiting go
first, in this process and in others (through a second, "intent" file on
which waiting eager writers hold a shared lock).

A writer that must not wait at all (the webhook's group commit, which spills
a batch to the spool instead: app/intake/group_commit.py) begins inside `no_wait()`: its
`BEGIN` raises `WriteLockBusy` at once when the lock is held or queued for.

The lock is taken by `BEGIN` and released after `COMMIT`/`ROLLBACK` (or
when the connection closes) by `LockingConnection`, the sqlite3 connection
class `app.db.make_engine` asks for. The kernel drops a dead process's
flock, so a killed writer never leaves the lock held.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

# A writer waiting longer than this in its own process gets "database is
# locked", as SQLite's busy timeout would have said.
WAIT_SECONDS = 30.0

_local = threading.local()


@contextlib.contextmanager
def polite_writer() -> Iterator[None]:
    """Transactions begun by this thread inside the block let eager writers first."""
    before = getattr(_local, "polite", False)
    _local.polite = True
    try:
        yield
    finally:
        _local.polite = before


class WriteLockBusy(Exception):
    """A transaction begun inside `no_wait()` found the write lock taken."""


@contextlib.contextmanager
def no_wait() -> Iterator[None]:
    """Transactions begun by this thread inside the block take the lock only
    if it is free now, else raise `WriteLockBusy` (nothing was written)."""
    before = getattr(_local, "no_wait", False)
    _local.no_wait = True
    try:
        yield
    finally:
        _local.no_wait = before


def set_polite_writer(polite: bool = True) -> None:
    """Mark this thread's transactions polite for good (a worker thread)."""
    _local.polite = polite


class WriteLock:
    """The lock of one database file, shared by all connections of a process."""

    def __init__(self, path: str | None) -> None:
        self._cond = threading.Condition()
        self._held = False
        self._eager_waiting = 0
        self._polite_waiting = 0
        self._write_fd = self._intent_fd = -1
        if path is not None:
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
            self._write_fd = os.open(f"{path}-writer.lock", flags, 0o600)
            self._intent_fd = os.open(f"{path}-intent.lock", flags, 0o600)

    def acquire(self) -> None:
        polite = getattr(_local, "polite", False)
        with self._cond:
            if polite:
                self._polite_waiting += 1
                try:
                    ready = self._cond.wait_for(
                        lambda: not self._held and not self._eager_waiting, WAIT_SECONDS
                    )
                finally:
                    self._polite_waiting -= 1
            else:
                self._eager_waiting += 1
                try:
                    ready = self._cond.wait_for(lambda: not self._held, WAIT_SECONDS)
                finally:
                    self._eager_waiting -= 1
            if not ready:
                raise sqlite3.OperationalError("database is locked")
            self._held = True
        try:
            self._acquire_file(polite)
        except BaseException:
            self._release_thread()
            raise

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it or waits for it; never waits."""
        with self._cond:
            if self._held or self._eager_waiting:  # eager writers go before polite ones
                return False
            self._held = True
        if self._write_fd >= 0:
            try:
                fcntl.flock(self._write_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._release_thread()
                return False
            except BaseException:
                self._release_thread()
                raise
        return True

    def _acquire_file(self, polite: bool) -> None:
        if self._write_fd < 0:
            return
        if polite:
            # Wait until no eager writer of another process is queued, then queue.
            fcntl.flock(self._intent_fd, fcntl.LOCK_EX)
            fcntl.flock(self._intent_fd, fcntl.LOCK_UN)
            fcntl.flock(self._write_fd, fcntl.LOCK_EX)
            return
        fcntl.flock(self._intent_fd, fcntl.LOCK_SH)
        try:
            fcntl.flock(self._write_fd, fcntl.LOCK_EX)
        finally:
            fcntl.flock(self._intent_fd, fcntl.LOCK_UN)

    def waiting(self) -> int:
        """Writers of this process waiting for the lock."""
        with self._cond:
            return self._eager_waiting + self._polite_waiting

    def eager_waiting(self) -> bool:
        """True when an eager writer (this process or another) waits for the lock:
        a polite holder should commit and let it in."""
        if self._eager_waiting:
            return True
        if self._intent_fd < 0:
            return False
        try:
            fcntl.flock(self._intent_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True  # an eager writer of another process holds its intent
        fcntl.flock(self._intent_fd, fcntl.LOCK_UN)
        return False

    def release(self) -> None:
        if self._write_fd >= 0:
            fcntl.flock(self._write_fd, fcntl.LOCK_UN)
        self._release_thread()

    def _release_thread(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()


_locks: dict[str, WriteLock] = {}
_locks_guard = threading.Lock()


def lock_for(database: str) -> WriteLock:
    """The process's lock for the database file `database`."""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return WriteLock(None)  # a database of one connection: nobody to wait for
    key = os.path.realpath(database)
    with _locks_guard:
        found = _locks.get(key)
        if found is None:
            found = _locks[key] = WriteLock(key)
        return found


def eager_writers_waiting(dbapi_connection: Any) -> bool:
    """For a polite writer in a transaction on `dbapi_connection` (SQLite): is
    someone who should go first waiting? Always False for other databases."""
    if isinstance(dbapi_connection, LockingConnection):
        return dbapi_connection.write_lock.eager_waiting()
    return False


class LockingConnection(sqlite3.Connection):
    """A sqlite3 connection whose transactions hold the database's `WriteLock`."""

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self.write_lock = lock_for(os.fsdecode(database))
        self._holding = False

    def begin_immediate(self) -> None:
        """Take the lock, then SQLite's: `BEGIN IMMEDIATE`. Inside `no_wait()`,
        raise `WriteLockBusy` instead of waiting for the lock."""
        if getattr(_local, "no_wait", False):
            if not self.write_lock.try_acquire():
                raise WriteLockBusy("the SQLite write lock is taken")
        else:
            self.write_lock.acquire()
        self._holding = True
        try:
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._let_go()
            raise

    def _let_go(self) -> None:
        if self._holding:
            self._holding = False
            self.write_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._let_go()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._let_go()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._let_go()
