"""SQLite's write lock (app/sqlite_writer.py): queued without SQLite's sleeps, handed on
inside a foreground process, foreground writers before a background one, a
timeout, and a killed holder.

Order is asserted, not speed: writers insert their name, and the rowids say
who got the lock first. A writer is known to be waiting by state the test
can read (the lock's waiting count, the kernel's /proc/locks), never by a
sleep.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.sqlite_writer import WriterConnection, _lock_of, set_background
from bench.servers import wait_for

# A writer in another process, driven line by line on stdin: `begin`,
# `insert NAME`, `commit`, `quit`; it answers `ok` after each.
WRITER = textwrap.dedent(
    """
    import sqlite3, sys
    from app.sqlite_writer import WriterConnection, set_background
    if sys.argv[2] == "background":
        set_background()
    conn = sqlite3.connect(sys.argv[1], factory=WriterConnection, timeout=30)
    conn.isolation_level = None
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "begin":
            conn.begin_immediate()
        elif command == "insert":
            conn.execute("INSERT INTO log (name) VALUES (?)", (arg,))
        elif command == "commit":
            conn.commit()
        elif command == "quit":
            break
        print("ok", flush=True)
    """
)


class Writer:
    def __init__(self, path: Path, kind: str, script: str = WRITER) -> None:
        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, str(path), kind],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def done(self) -> None:
        """Wait for the answer to the last command sent."""
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ok"

    def run(self, command: str) -> None:
        self.send(command)
        self.done()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(autouse=True)
def foreground() -> Iterator[None]:
    """This test process writes in the foreground, whatever ran in it before."""
    set_background(False)
    yield
    set_background(False)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "w.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def writers(db: Path) -> Iterator[list[Writer]]:
    started: list[Writer] = []
    yield started
    for writer in started:
        writer.close()


def connect(path: Path, timeout: float = 30) -> WriterConnection:
    conn = sqlite3.connect(path, factory=WriterConnection, timeout=timeout, check_same_thread=False)
    assert isinstance(conn, WriterConnection)
    conn.isolation_level = None
    return conn


def names(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM log ORDER BY id")]


def _locks_on(path: Path, *, blocked: bool) -> int:
    inode = os.stat(path).st_ino
    lines = Path("/proc/locks").read_text().splitlines()
    return sum(1 for line in lines if ("->" in line) == blocked and f":{inode} " in line)


def blocked_on(path: Path) -> int:
    """Requests blocked in flock(2) on the lock file `path` (lines `->` in /proc/locks)."""
    return _locks_on(path, blocked=True)


def holders(path: Path) -> int:
    """Locks held (not waited for) on `path`, from /proc/locks."""
    return _locks_on(path, blocked=False)


def write(conn: WriterConnection, name: str) -> None:
    conn.begin_immediate()
    conn.execute("INSERT INTO log (name) VALUES (?)", (name,))
    conn.commit()


def test_a_thread_waits_for_the_holder_and_goes_when_it_commits(db: Path) -> None:
    first, second = connect(db), connect(db)
    first.begin_immediate()
    first.execute("INSERT INTO log (name) VALUES ('first')")
    lock = _lock_of(str(db))
    assert lock is not None
    thread = threading.Thread(target=write, args=(second, "second"))
    thread.start()
    wait_for(lambda: len(lock._queue) == 1, what="the second writer to queue")
    assert names(db) == []  # nothing committed while the first holds the lock
    first.commit()
    thread.join(30)
    assert names(db) == ["first", "second"]


@pytest.mark.parametrize("background", [False, True])
def test_a_thread_that_asks_again_at_once_queues_behind_the_waiting_one(
    db: Path, background: bool
) -> None:
    """The worker's loop commits and begins its next message at once; its
    sender thread, already waiting, goes first (in a background process too,
    where the file lock is let go between them)."""
    loop, sender = connect(db), connect(db)
    loop.begin_immediate()
    loop.execute("INSERT INTO log (name) VALUES ('loop 1')")
    lock = _lock_of(str(db))
    assert lock is not None
    thread = threading.Thread(target=write, args=(sender, "sender"))
    set_background(background)
    try:
        thread.start()
        wait_for(lambda: len(lock._queue) == 1, what="the sender to queue")
        loop.commit()
        write(loop, "loop 2")  # at once, in the same thread
        thread.join(30)
    finally:
        set_background(False)
    assert names(db) == ["loop 1", "sender", "loop 2"]


def test_a_foreground_process_hands_the_lock_on_before_a_queued_process(
    db: Path, writers: list[Writer]
) -> None:
    first, second = connect(db), connect(db)
    first.begin_immediate()
    first.execute("INSERT INTO log (name) VALUES ('first')")
    # A process queued in the kernel: woken the moment the file is let go.
    other = Writer(db, "background")
    writers.append(other)
    other.send("begin")
    writer_lock = Path(f"{db}-writer.lock")
    wait_for(lambda: blocked_on(writer_lock) or None, what="the other process to queue")
    lock = _lock_of(str(db))
    assert lock is not None
    thread = threading.Thread(target=write, args=(second, "second"))
    thread.start()
    wait_for(lambda: len(lock._queue) == 1, what="the second thread to queue")
    first.commit()  # handed on to the second thread, not to the other process
    thread.join(30)
    other.done()
    other.run("insert other")
    other.run("commit")
    assert names(db) == ["first", "second", "other"]


def test_a_background_writer_waits_while_a_foreground_writer_waits(
    db: Path, writers: list[Writer]
) -> None:
    holder = Writer(db, "foreground")
    background = Writer(db, "background")
    writers += [holder, background]
    holder.run("begin")
    holder.run("insert holder")
    foreground = connect(db)
    thread = threading.Thread(target=write, args=(foreground, "foreground"))
    thread.start()
    # The foreground writer holds the intent lock (shared) while it waits:
    # the background writer, arriving after it, blocks on taking it.
    intent = Path(f"{db}-intent.lock")
    wait_for(lambda: holders(intent) or None, what="the foreground writer to wait")
    background.send("begin")
    wait_for(lambda: blocked_on(intent) or None, what="the background writer at the gate")
    holder.run("commit")
    thread.join(30)
    background.done()
    background.run("insert background")
    background.run("commit")
    assert names(db) == ["holder", "foreground", "background"]


def test_threads_of_a_background_process_do_not_pass_the_lock_between_them(
    db: Path, writers: list[Writer]
) -> None:
    # Two background connections in one process (the worker's loop and
    # sender): when one commits while the other waits, the file is let go,
    # so a foreground writer queued on it gets in between.
    script = textwrap.dedent(
        """
        import sqlite3, sys, threading
        from app.sqlite_writer import WriterConnection, set_background, _lock_of
        set_background()
        a = sqlite3.connect(sys.argv[1], factory=WriterConnection, timeout=30,
                            check_same_thread=False)
        b = sqlite3.connect(sys.argv[1], factory=WriterConnection, timeout=30,
                            check_same_thread=False)
        a.isolation_level = b.isolation_level = None
        a.begin_immediate()
        a.execute("INSERT INTO log (name) VALUES ('a')")
        def second():
            b.begin_immediate()
            b.execute("INSERT INTO log (name) VALUES ('b')")
            b.commit()
        t = threading.Thread(target=second)
        t.start()
        lock = _lock_of(sys.argv[1])
        while len(lock._queue) != 1:
            pass
        print("ready", flush=True)
        sys.stdin.readline()
        a.commit()
        t.join()
        print("done", flush=True)
        """
    )
    two = Writer(db, "background", script)
    writers.append(two)
    assert two.proc.stdout is not None
    assert two.proc.stdout.readline().strip() == "ready"
    foreground = connect(db)
    thread = threading.Thread(target=write, args=(foreground, "foreground"))
    thread.start()
    intent = Path(f"{db}-intent.lock")
    # waiting for the file: it holds the intent lock (shared)
    wait_for(lambda: holders(intent) or None, what="the foreground writer to wait")
    two.send("go")
    thread.join(30)
    assert two.proc.stdout.readline().strip() == "done"
    assert names(db) == ["a", "foreground", "b"]


def test_a_foreground_writer_gives_up_after_its_timeout(db: Path, writers: list[Writer]) -> None:
    holder = Writer(db, "foreground")
    writers.append(holder)
    holder.run("begin")
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        connect(db, timeout=0.2).begin_immediate()
    holder.run("commit")
    write(connect(db), "after")  # nothing left held by the one that gave up
    assert names(db) == ["after"]


def test_a_killed_holder_leaves_nothing_held(db: Path, writers: list[Writer]) -> None:
    holder = Writer(db, "foreground")
    writers.append(holder)
    holder.run("begin")
    holder.run("insert lost")
    holder.proc.kill()
    holder.proc.wait(10)
    write(connect(db), "after")
    assert names(db) == ["after"]


def test_a_memory_database_needs_no_lock() -> None:
    conn = sqlite3.connect(":memory:", factory=WriterConnection)
    assert isinstance(conn, WriterConnection)
    conn.isolation_level = None
    conn.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, name TEXT)")
    write(conn, "x")
    assert conn.execute("SELECT name FROM log").fetchall() == [("x",)]
