"""`gridline serve`'s background worker in a child process.

A worker thread inside the web server shares its interpreter lock: while it
routes a backlog (tens of milliseconds of Python per message) the webhook's
event loop waits for the lock at every turn, and acknowledging texts slows to
a crawl exactly when many arrive. In its own process the worker has its own
interpreter. On PostgreSQL it also runs at a lower CPU priority
(`GRIDLINE_WORKER_NICE`), so on a busy machine the kernel serves the webhook
first: a text is acknowledged at once and routed as soon as a core is free
(on an idle machine the priority changes nothing). Not on SQLite, where the
worker's transactions hold the single write lock: descheduled while holding
it, a low-priority worker would stall every writer behind it (the API, the
console, the replay of the webhook's spill: app/intake/group_commit.py).

On PostgreSQL the worker's outbox goes out from a second child, the sender
(`GRIDLINE_SENDER_PROCESS`): at 50 texts a second one interpreter spent most
of a core routing and sending, and a busy moment left routing behind. The
worker tells the sender after each commit, as the server tells the worker.
Not on SQLite by default: there the two take turns at the one write lock,
and a backlog drained at half the rate of a worker sending on a thread.

The server wakes the worker when a message is stored (a byte down a pipe,
`PipeEvent`), stops both children on shutdown, and if the server dies (even
by SIGKILL) they stop too: the kernel signals them (`PR_SET_PDEATHSIG`), and
their loops check their parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import select
import signal
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from app.settings import Settings
from app.worker.pressure import Pressure

if TYPE_CHECKING:
    from app.runtime import Runtime
    from sms.gateway import Gateway

log = logging.getLogger("gridline.worker")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the parent exits; elsewhere the loop's check does it."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


# A child's loop: given its runtime, its gateway and its `alive` check, it runs
# until it is told to stop or its parent is gone.
ChildLoop = Callable[["Runtime", "Gateway", Callable[[], bool]], None]


def _run_child(settings: Settings, parent: int, loop: ChildLoop) -> None:
    """What both children do: die with the parent, take SIGTERM as a stop, run
    niced (PostgreSQL), build their runtime and gateway, then `loop`."""
    from app.delivery.gateways import build_gateway
    from app.logging_setup import configure_logging
    from app.runtime import Runtime, settle_heap

    _die_with_parent()
    # A plain flag: taking the events' locks inside a signal handler could deadlock.
    # The loop sees it after the current pass, or a poll interval later.
    terminated: list[bool] = []
    signal.signal(signal.SIGTERM, lambda _signum, _frame: terminated.append(True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops us
    if settings.worker_nice and not settings.database_url.startswith("sqlite"):
        # Not on SQLite: there the worker's transactions hold the one write lock,
        # and a worker descheduled while holding it would stall every writer.
        with contextlib.suppress(OSError):
            os.nice(settings.worker_nice)
    configure_logging(settings.log_level)
    rt = Runtime.build(settings)
    gateway = build_gateway(settings)
    settle_heap()
    try:
        loop(rt, gateway, lambda: not terminated and os.getppid() == parent)
    finally:
        gateway.close()
        rt.close()


def _child(
    settings: Settings, wake: Any, stop: Any, parent: int, due: Any | None, pressure: Pressure
) -> None:
    """The worker: inbound, deadlines, webhooks; its outbox goes out here on a
    thread, or with `due` from the sender process, told through `due`. It
    holds back during the server's bursts (`pressure`: app/worker/pressure.py)."""
    from app.worker.loop import WorkerThread

    _run_child(
        settings,
        parent,
        lambda rt, gateway, alive: WorkerThread(
            rt,
            gateway,
            wake=wake,
            stop=stop,
            alive=alive,
            poke=due.set if due is not None else None,
            pressure=pressure,
        ).run_forever(),
    )


def _sender_child(settings: Settings, due: Any, stop: Any, parent: int) -> None:
    """The sender: the outbox, whenever the worker commits (`due`) or a retry
    comes due by the clock."""
    from app.worker.loop import Sender

    _run_child(
        settings,
        parent,
        lambda rt, gateway, alive: Sender(
            rt, gateway, alive=alive, due=due, stop=stop
        ).run_forever(),
    )


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
    """The worker as a child process, with `WorkerThread`'s start/wake/stop;
    its sender as a second one when `Settings.sends_from_own_process`."""

    def __init__(self, settings: Settings, *, pressure: Pressure | None = None) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads
        self._wake = PipeEvent()
        self._stop = context.Event()  # set once, at shutdown
        self._due = PipeEvent() if settings.sends_from_own_process else None
        self._process = context.Process(
            target=_child,
            args=(settings, self._wake, self._stop, os.getpid(), self._due, pressure or Pressure()),
            name="gridline-worker",
            daemon=True,
        )
        self._sender = (
            context.Process(
                target=_sender_child,
                args=(settings, self._due, self._stop, os.getpid()),
                name="gridline-sender",
                daemon=True,
            )
            if self._due is not None
            else None
        )

    def _processes(self) -> Sequence[BaseProcess]:
        return [self._process] + ([self._sender] if self._sender is not None else [])

    def start(self) -> None:
        for process in self._processes():
            process.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._due is not None:
            self._due.set()
        for process in self._processes():
            process.join(timeout)
            if process.is_alive():
                log.warning("%s did not stop in %.0f s; terminating it", process.name, timeout)
                process.terminate()
                process.join(timeout)
        self._wake.close()
        if self._due is not None:
            self._due.close()
