"""Webhooks first: `gridline serve`'s worker gives way while texts pour in.

On one host the web process and the worker share the cores. During a burst
(a typhoon warning, hundreds of texts a second) acknowledging every text at
once matters more than routing each within the second: an unanswered webhook
is retried by the gateway and, past its timeout, reported as an error, while
a routed case can wait a moment in the backlog. The kernel's priority
(`GRIDLINE_WORKER_NICE`) does not settle it alone: the database server's
processes that serve the worker run at full priority.

The web process's group commit (app/intake/group_commit.py) tells `mark` how many
messages each of its commits stored; when those of the last `WINDOW` seconds
come to `BURST_RATE` a second (eight times the 50 a second the service is
sized for), the moment is marked. The worker `hold`s before each batch while
the mark is under `QUIET` seconds old, at most `MOST` seconds at a time,
then takes a batch all the same: a burst that never ends slows routing (to a
batch in every `MOST` seconds or so) but cannot stop it. The rate, not the
size of a commit: at 50 a second a slow disk makes commits of ten, and a
worker holding then fell seconds behind (BENCHMARKS.md).

The mark is one shared double (`multiprocessing`'s shared memory, readable
from the worker's child process) holding a `time.monotonic()` reading, which
on Linux is one clock for every process of the host. A worker elsewhere
(`gridline worker`, another host) has no mark and never holds.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import time
from collections.abc import Callable
from typing import Any

BURST_RATE = 400  # messages a second stored by the webhook
WINDOW = 0.25  # seconds over which it is counted
QUIET = 0.1  # seconds after the last mark before the worker goes on
MOST = 0.5  # seconds the worker holds at most before its next batch

_NEVER = -1e18


class Pressure:
    """When the webhook last committed a burst; `hold` waits for it to pass."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # The web process's own count (its writer thread's): the current window.
        self._window_start = _NEVER
        self._window_count = 0
        # Picklable to a spawned child (the worker process) with its arguments.
        self._at: Any = multiprocessing.get_context("spawn").RawValue(ctypes.c_double, _NEVER)

    def mark(self, stored: int) -> None:
        """The webhook committed `stored` messages (one thread calls this)."""
        now = self._clock()
        if now - self._window_start >= WINDOW:
            self._window_start, self._window_count = now, 0
        self._window_count += stored
        if self._window_count >= BURST_RATE * WINDOW:
            self._at.value = now

    def hold(self, wait: Callable[[float], object]) -> float:
        """Wait (`wait(seconds)`: a stop event's `wait`, say) while the last
        mark is under `QUIET` seconds old, `MOST` seconds at most; returns
        the seconds held."""
        held = 0.0
        while held < MOST:
            since = self._clock() - self._at.value
            if since >= QUIET:
                break
            pause = min(QUIET - since, MOST - held)
            started = self._clock()
            if wait(pause):  # stopping
                break
            held += max(self._clock() - started, pause)
        return held
