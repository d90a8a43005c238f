"""SQLite's write lock handed over without polling (app/sqlite_lock.py): between
threads and between processes, eager writers (webhooks) before polite ones (the worker)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from app.db import make_engine
from app.sqlite_lock import WriteLock, WriteLockBusy, lock_for, no_wait, polite_writer


def _wait_for(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _writer(lock: WriteLock, order: list[str], name: str, *, polite: bool) -> threading.Thread:
    def run() -> None:
        if polite:
            with polite_writer():
                lock.acquire()
        else:
            lock.acquire()
        order.append(name)
        lock.release()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_an_eager_writer_goes_before_a_polite_one_that_waited_longer(tmp_path):
    lock = lock_for(str(tmp_path / "a.db"))
    order: list[str] = []
    lock.acquire()
    polite = _writer(lock, order, "worker", polite=True)
    _wait_for(lambda: lock.waiting() == 1, "the worker to wait")
    eager = _writer(lock, order, "webhook", polite=False)
    _wait_for(lambda: lock.waiting() == 2, "the webhook to wait")
    assert lock.eager_waiting()
    lock.release()
    eager.join(10)
    polite.join(10)
    assert order == ["webhook", "worker"]


def _hold_in_child(path: str, held: object, release: object) -> None:
    lock = lock_for(path)
    with polite_writer():
        lock.acquire()
    held.set()  # type: ignore[attr-defined]
    release.wait(30)  # type: ignore[attr-defined]
    lock.release()


def _eager_waiting_in_child(path: str, answer: object) -> None:
    answer.value = int(lock_for(path).eager_waiting())  # type: ignore[attr-defined]


def _probe_eager_waiting(path: str) -> int:
    """`eager_waiting()` as another process sees it."""
    spawn = multiprocessing.get_context("spawn")
    answer = spawn.Value("i", -1)
    probe = spawn.Process(target=_eager_waiting_in_child, args=(path, answer))
    probe.start()
    probe.join(30)
    return int(answer.value)


def test_the_lock_excludes_other_processes_and_they_see_eager_waiters(tmp_path):
    path = str(tmp_path / "b.db")
    spawn = multiprocessing.get_context("spawn")
    held, release = spawn.Event(), spawn.Event()
    child = spawn.Process(target=_hold_in_child, args=(path, held, release))
    child.start()
    try:
        assert held.wait(30)
        lock = lock_for(path)
        got = threading.Event()

        def take() -> None:
            lock.acquire()
            got.set()
            lock.release()

        taker = threading.Thread(target=take)
        taker.start()
        # Our eager writer queues behind the child: another process can tell.
        _wait_for(
            lambda: _probe_eager_waiting(path) == 1, "another process to see the waiting writer"
        )
        assert not got.is_set()
        release.set()
        assert got.wait(30)  # handed over when the child let go
        taker.join(10)
    finally:
        release.set()
        child.join(30)
    assert child.exitcode == 0
    assert _probe_eager_waiting(path) == 0  # nobody waits now


def test_engine_transactions_take_the_lock_and_let_it_go(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        lock = lock_for(str(tmp_path / "c.db"))
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            blocked = threading.Event()
            done = threading.Event()

            def other() -> None:
                blocked.set()
                with engine.begin() as conn2:
                    conn2.execute(text("INSERT INTO t VALUES (2)"))
                done.set()

            thread = threading.Thread(target=other)
            thread.start()
            assert blocked.wait(10)
            _wait_for(lambda: lock.waiting() == 1, "the second transaction to wait")
            conn.execute(text("INSERT INTO t VALUES (1)"))
        assert done.wait(10)  # woken by the commit
        thread.join(10)
        try:
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (3)"))
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        with engine.connect() as conn:  # the rollback let go of the lock too
            assert conn.execute(text("SELECT x FROM t ORDER BY x")).scalars().all() == [1, 2]
        assert lock.waiting() == 0
        got = threading.Event()
        threading.Thread(target=lambda: (lock.acquire(), got.set(), lock.release())).start()
        assert got.wait(10)
    finally:
        engine.dispose()


def test_no_wait_begins_only_when_the_lock_is_free_here_and_in_other_processes(tmp_path):
    path = str(tmp_path / "d.db")
    engine = make_engine(f"sqlite:///{path}")
    lock = lock_for(path)

    def insert(x: int) -> None:
        with no_wait(), engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": x})

    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        insert(1)  # free: taken at once
        lock.acquire()  # another thread of this process holds it
        failed: list[BaseException] = []
        thread = threading.Thread(target=lambda: _catch(lambda: insert(2), failed))
        thread.start()
        thread.join(10)
        assert [type(e) for e in failed] == [WriteLockBusy]
        assert lock.waiting() == 0  # it did not queue
        lock.release()
        spawn = multiprocessing.get_context("spawn")
        held, release = spawn.Event(), spawn.Event()
        child = spawn.Process(target=_hold_in_child, args=(path, held, release))
        child.start()
        try:
            assert held.wait(30)
            with pytest.raises(WriteLockBusy):
                insert(3)  # another process holds it
        finally:
            release.set()
            child.join(30)
        insert(4)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT x FROM t ORDER BY x")).scalars().all() == [1, 4]
    finally:
        engine.dispose()


def _catch(fn: Callable[[], None], into: list[BaseException]) -> None:
    try:
        fn()
    except BaseException as exc:
        into.append(exc)
