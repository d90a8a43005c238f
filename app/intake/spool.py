"""The inbound spool: signed webhooks accepted while the database is unreachable.

The webhook answers 200 only for a message that is durable. When the database
cannot be reached it appends the message to `inbound.jsonl` in the spool
folder (one JSON object per line, fsync'd before the answer) instead. The
worker (each pass) and the app (at start-up) replay the spool. A replay goes:

1. Under the file's lock, the active file is renamed to `inbound-*.replay`.
   Writers take the same lock and check, once they hold it, that the name
   still points at the file they opened; so nothing is appended to a file
   that is being replayed.
2. Every line of a `.replay` file is inserted with `store_many` (insert …
   on conflict do nothing on MessageSid), in file order, in one
   transaction, committed. Files are replayed oldest first.
3. Only then is the file deleted. A crash before that leaves the file, which
   the next replay inserts again: the MessageSid makes that a no-op.

A line cut short by a crash during the write (no newline, or not JSON) was
never answered 200; the gateway retries it, so it is skipped. A writer that
finds such a torn tail ends it with a newline before appending, so the torn
bytes never glue onto the next good line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work
from app.errors import DomainError
from app.intake.store import InboundSms, store_many
from sms.phones import mask_phone

log = logging.getLogger("gridline.spool")

ACTIVE = "inbound.jsonl"
REPLAY_GLOB = "inbound-*.replay"


class SpoolUnavailable(DomainError):
    """Neither the database nor the spool could keep the message: the gateway retries."""

    status_code = 503
    code = "unavailable"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()

    @property
    def active(self) -> Path:
        return self.directory / ACTIVE

    def append(self, sms: InboundSms) -> None:
        """Append one message durably (written and fsync'd) or raise SpoolUnavailable
        (then nothing is kept: a line cut short is skipped at replay, and no
        caller answers 200)."""
        row = {**sms.as_row(), "received_at": sms.received_at.isoformat()}
        line = (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        try:
            with self._lock:
                self._append(line)
        except OSError as exc:
            log.error("spool %s: cannot append: %s", self.directory, exc.strerror)
            raise SpoolUnavailable("database and spool unavailable; retry later") from exc

    def _append(self, line: bytes) -> None:
        created = not self.directory.exists()
        self.directory.mkdir(parents=True, exist_ok=True)
        if created:
            _fsync_dir(self.directory.parent)
        while True:
            fd = os.open(self.active, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    current = os.stat(self.active)
                except FileNotFoundError:
                    continue  # renamed for replay while we waited: open the new one
                stat = os.fstat(fd)
                if stat.st_ino != current.st_ino:
                    continue
                data = line
                if stat.st_size and os.pread(fd, 1, stat.st_size - 1) != b"\n":
                    data = b"\n" + line  # end the torn line a crash left behind
                _write_all(fd, data)
                os.fsync(fd)
                if stat.st_size == 0:
                    _fsync_dir(self.directory)  # the new file's name must survive too
                return
            finally:
                os.close(fd)  # releases the lock

    def pending(self) -> bool:
        """Anything to replay? (cheap: a stat or two)"""
        try:
            if self.active.stat().st_size > 0:
                return True
            return self.directory.is_dir() and any(self.directory.glob(REPLAY_GLOB))
        except FileNotFoundError:
            return self.directory.is_dir() and any(self.directory.glob(REPLAY_GLOB))
        except OSError as exc:  # not a folder, no permission: nothing we can replay
            log.error("spool %s: %s", self.directory, exc.strerror)
            return False

    def count_lines(self) -> int:
        """Messages waiting in the spool (for /metrics and tests)."""
        if not self.directory.is_dir():
            return 0
        # A replay may rename the active file while we look: a second look finds
        # it under its new name, and each file (inode) counts once.
        counted: dict[int, int] = {}
        for _ in range(2):
            for path in [self.active, *sorted(self.directory.glob(REPLAY_GLOB))]:
                with contextlib.suppress(FileNotFoundError), path.open("rb") as handle:
                    inode = os.fstat(handle.fileno()).st_ino
                    if inode not in counted:
                        counted[inode] = sum(1 for line in handle if line.endswith(b"\n"))
        return sum(counted.values())

    def _rotate(self) -> None:
        """Move the active file aside for replay, under the writers' lock."""
        try:
            fd = os.open(self.active, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            stat = os.fstat(fd)
            try:
                current = os.stat(self.active)
            except FileNotFoundError:
                return
            if stat.st_ino != current.st_ino or stat.st_size == 0:
                return
            target = self.directory / f"inbound-{time.time_ns()}-{os.getpid()}.replay"
            os.rename(self.active, target)
            _fsync_dir(self.directory)
        finally:
            os.close(fd)

    def replay(self, sessions: sessionmaker[Session]) -> int:
        """Store every spooled message once; returns how many were new.

        Raises what the database raises when it is still unreachable; the
        files stay for the next try.
        """
        if not self.pending():
            return 0
        with self._lock:
            self._rotate()
        stored = 0
        for path in sorted(self.directory.glob(REPLAY_GLOB)):
            stored += self._replay_file(path, sessions)
        return stored

    def _replay_file(self, path: Path, sessions: sessionmaker[Session]) -> int:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return 0  # another replayer finished it
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # another replayer has it
            if not path.exists():
                return 0
            with os.fdopen(os.dup(fd), "rb") as handle:
                raw = handle.read()
            records = _parse(raw, path)
            with unit_of_work(sessions) as session:
                stored = sum(store_many(session, records))
            # Committed: only now may the file go.
            path.unlink()
            _fsync_dir(self.directory)
            if records:
                log.info("spool %s: replayed %d messages (%d new)", path.name, len(records), stored)
            return stored
        finally:
            os.close(fd)


def _parse(raw: bytes, path: Path) -> list[InboundSms]:
    records: list[InboundSms] = []
    lines = raw.split(b"\n")
    # The last element is b"" for a file that ends with a newline, else a torn line.
    for number, line in enumerate(lines, start=1):
        complete = number < len(lines)
        if not line.strip():
            continue
        try:
            record = InboundSms.from_row(json.loads(line.decode("utf-8")))
        except (ValueError, KeyError, TypeError, AttributeError):
            # Torn by a crash mid-write: never acknowledged, the gateway retries it.
            log.warning(
                "spool %s line %d: %s line skipped",
                path.name,
                number,
                "unreadable" if complete else "torn last",
            )
            continue
        log.debug("spool: %s from %s", record.message_sid, mask_phone(record.from_phone))
        records.append(record)
    return records
