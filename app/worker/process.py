"""`gridline serve`'s background worker in a child process.

A worker thread inside the web server shares its interpreter lock: while it
routes a backlog (milliseconds of Python per message) the webhook's event
loop waits for the lock at every turn, and acknowledging texts slows exactly
when many arrive. In its own process the worker has its own interpreter. On
PostgreSQL it also runs at a lower CPU priority (`GRIDLINE_WORKER_NICE`), so
on a busy machine the kernel serves the webhook first; not on SQLite, where
a low-priority worker descheduled while holding the one write lock would
stall every writer behind it.

The server wakes the worker when a message is stored (a byte down a pipe,
`PipeEvent`), stops it on shutdown, and if the server dies (even by SIGKILL)
it stops too: the kernel signals it (`PR_SET_PDEATHSIG`), and its loop
checks its parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import select
import signal
from multiprocessing.connection import Connection
from typing import Any

from app.settings import Settings

log = logging.getLogger("gridline.worker")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the parent exits; elsewhere the loop's check does it."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _child(settings: Settings, wake: Any, stop: Any, parent: int) -> None:
    """The child: die with the parent, take SIGTERM as a stop, run niced
    (PostgreSQL), build its runtime and gateway, then the worker's loop."""
    from app.delivery.gateways import build_gateway
    from app.logging_setup import configure_logging
    from app.runtime import Runtime, settle_heap
    from app.sqlite_writer import set_background
    from app.worker.loop import WorkerThread

    _die_with_parent()
    # A plain flag: taking the events' locks inside a signal handler could deadlock.
    # The loop sees it after the current pass, or a poll interval later.
    terminated: list[bool] = []
    signal.signal(signal.SIGTERM, lambda _signum, _frame: terminated.append(True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops us
    if settings.worker_nice and not settings.database_url.startswith("sqlite"):
        with contextlib.suppress(OSError):
            os.nice(settings.worker_nice)
    configure_logging(settings.log_level)
    set_background()  # on SQLite, the webhook writes first (app/sqlite_writer.py)
    rt = Runtime.build(settings)
    gateway = build_gateway(settings)
    settle_heap()
    try:
        WorkerThread(
            rt,
            gateway,
            wake=wake,
            stop=stop,
            alive=lambda: not terminated and os.getppid() == parent,
        ).run_forever()
    finally:
        gateway.close()
        rt.close()


class PipeEvent:
    """A wake-up flag shared with a child process over a pipe; `set` never blocks.

    A `multiprocessing.Event` would not do on the webhook's path: its `set`
    waits, holding the event loop, until a sleeping child has actually woken
    (`Condition.notify` waits for the sleeper), which on a busy host is a
    scheduler round trip, and longer for a niced child. Here `set` is one
    non-blocking write (a full pipe already means "set"); the child `wait`s
    with `select` and `clear`s by draining the pipe. Picklable for a spawned
    child (the pipe's ends travel as duplicated descriptors).
    """

    def __init__(self) -> None:
        reader, writer = multiprocessing.Pipe(duplex=False)
        for end in (reader, writer):
            os.set_blocking(end.fileno(), False)
        self._reader: Connection = reader
        self._writer: Connection = writer

    def set(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: already set
            os.write(self._writer.fileno(), b"\0")

    def is_set(self) -> bool:
        return self.wait(0)

    def wait(self, timeout: float | None = None) -> bool:
        readable, _, _ = select.select([self._reader.fileno()], [], [], timeout)
        return bool(readable)

    def clear(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._reader.fileno(), 4096):
                pass

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


class WorkerProcess:
    """The worker as a child process, with `WorkerThread`'s start/wake/stop."""

    def __init__(self, settings: Settings) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads
        self._wake = PipeEvent()
        self._stop = context.Event()  # set once, at shutdown
        self._process = context.Process(
            target=_child,
            args=(settings, self._wake, self._stop, os.getpid()),
            name="gridline-worker",
            daemon=True,
        )

    def start(self) -> None:
        self._process.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._process.join(timeout)
        if self._process.is_alive():
            log.warning("the worker did not stop in %.0f s; terminating it", timeout)
            self._process.terminate()
            self._process.join(timeout)
        self._wake.close()
