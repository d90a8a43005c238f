"""The pipe that wakes `gridline serve`'s worker process (app/worker/process.py).
The cross-process path (a webhook wakes the child) is in tests/cli/test_serve.py."""

from __future__ import annotations

import threading

from app.worker.process import PipeEvent


def test_pipe_event_is_set_until_cleared_and_wait_returns_at_once_when_set():
    event = PipeEvent()
    try:
        assert not event.is_set()
        assert event.wait(0.01) is False  # times out: nothing written
        event.set()
        event.set()
        assert event.is_set()
        assert event.wait(5) is True
        event.clear()
        assert not event.is_set()
    finally:
        event.close()


def test_set_never_blocks_even_when_nobody_reads():
    event = PipeEvent()
    try:
        # Far more than a pipe holds (64 KiB): a blocking write would hang here.
        for _ in range(200_000):
            event.set()
        assert event.is_set()
        event.clear()
        assert not event.is_set()
    finally:
        event.close()


def test_a_waiter_wakes_when_another_thread_sets():
    event = PipeEvent()
    woke = threading.Event()

    def waiter() -> None:
        if event.wait(30):
            woke.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    event.set()
    thread.join(30)
    assert woke.is_set()
    event.close()
