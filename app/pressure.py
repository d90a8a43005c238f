"""Webhooks first: `gridline serve`'s worker gives way while texts pour in.

On one host the web process and the worker share the cores. During a burst
(a typhoon warning, hundreds of texts a second) acknowledging every text at
once matters more than routing each within the second: an unanswered webhook
is retried by the gateway and, past its timeout, reported as an error, while
a routed case can wait a moment in the backlog. The kernel's priority
(`GRIDLINE_WORKER_NICE`) does not settle it alone: the database server's
processes that serve the worker run at full priority.

The web process's group commit (app/ingest.py) `mark`s the moment whenever
one of its transactions stores `BURST` or more messages: at 50 texts a
second a commit holds one or two, in a burst tens. The worker `hold`s before
each batch while such a commit is under `QUIET` seconds old, at most `MOST`
seconds at a time, then takes a batch all the same: a burst that never ends
slows routing (to a batch in every `MOST` seconds or so) but cannot stop it.

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

BURST = 8  # messages in one commit of the webhook's group commit
QUIET = 0.1  # seconds without such a commit before the worker goes on
MOST = 0.5  # seconds the worker holds at most before its next batch

_NEVER = -1e18


class Pressure:
    """When the webhook last committed a burst; `hold` waits for it to pass."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        shared: Any | None = None,
    ) -> None:
        self._clock = clock
        # Picklable to a spawned child (the worker process) with its arguments.
        self._at = shared or multiprocessing.get_context("spawn").RawValue(ctypes.c_double, _NEVER)

    def mark(self, stored: int) -> None:
        """The webhook committed `stored` messages in one transaction."""
        if stored >= BURST:
            self._at.value = self._clock()

    def hold(self, wait: Callable[[float], object]) -> float:
        """Wait (`wait(seconds)`: a stop event's `wait`, say) while a burst's
        commit is under `QUIET` seconds old, `MOST` seconds at most; returns
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
