"""The background worker: stored messages, deadline steps, the outbox, office webhooks.

`run_once` is one pass (tests call it with an explicit `now`): replay the
spool, process stored messages one transaction each, fire due deadline steps
(20 to a transaction: app/deadlines/scheduler.py), send the outbox, deliver
office webhooks. `WorkerThread` runs passes until stopped, woken early by the
webhook when a message arrives; the deadline steps and digests, which come
due by the clock, it looks at once a poll interval, not at every wake. Two
`Lane` threads beside it, told whenever a pass commits: the `Sender`, so
that a forward leaves as soon as the transaction that decided it commits
instead of after the rest of the pass, and `OfficeWebhooks`, so that an
office's receiver that hangs holds only that thread. Wall-clock budgets read
`rt.timer` (a monotonic clock, injectable).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.context import Ctx
from app.db import database_unavailable, unit_of_work
from app.deadlines import digests, scheduler
from app.delivery import office_webhooks
from app.delivery.outbox import deliver_due
from app.inbound.process import process
from app.inbound.queue import next_unprocessed
from app.intake.spool import Spool
from app.models.messages import InboundMessage
from app.runtime import Runtime
from routing.delivery import Backoff, RateLimit
from sms.gateway import Gateway

log = logging.getLogger("gridline.worker")

# The most a pass takes of each (then the next pass goes on at once).
PASS_INBOUND = 100
PASS_STEPS = 100
PASS_WEBHOOKS = 50


@dataclass
class PassResult:
    replayed: int = 0
    inbound: int = 0
    inbound_failed: int = 0
    steps: int = 0
    sent: dict[str, int] = field(default_factory=dict)
    webhooks: dict[str, int] = field(default_factory=dict)
    cut_short: bool = False  # a stage stopped at its time or count: work may be left

    @property
    def timed_left(self) -> bool:
        """Deadline steps or office webhooks stopped at their count: more may be due."""
        return self.steps >= PASS_STEPS or sum(self.webhooks.values()) >= PASS_WEBHOOKS

    @property
    def more(self) -> bool:
        """Whether the next pass should start at once: a stage stopped before it
        ran out of work (or, sending in the pass, it sent). Otherwise the
        worker waits to be woken: a webhook arriving during the pass has
        already woken it."""
        sending = bool(self.sent) and "throttled" not in self.sent
        return self.cut_short or sending


def process_one(rt: Runtime, *, now: datetime | None = None) -> str | None:
    """Process the next stored message in a transaction of its own.

    Returns `done`, `failed` (it raised: rolled back, then marked `failed`
    with its error, so it is visible and never retried in a loop) or None
    when no message waits. `now` pins the moment (tests), else the clock.
    """
    taken: int | None = None
    moment = now or rt.clock()
    try:
        with unit_of_work(rt.sessions) as session:
            message = next_unprocessed(session)
            if message is None:
                return None
            taken = message.id
            process(Ctx(session=session, rt=rt, now=moment), message)
        return "done"
    except Exception as exc:
        if taken is None:
            raise  # taking the message failed (the database is down)
        log.exception("inbound message %s failed", taken)
        with unit_of_work(rt.sessions) as session:
            row = session.get(InboundMessage, taken)
            if row is not None:
                row.status = "failed"
                row.error = repr(exc)[:2000]
                row.processed_at = moment
        return "failed"


def process_inbound(
    rt: Runtime,
    *,
    now: datetime | None = None,
    limit: int = PASS_INBOUND,
    max_seconds: float | None = None,
    committed: Callable[[], None] | None = None,
) -> tuple[int, int]:
    """Process stored messages one by one; returns (done, failed).

    Stops after `limit` messages, or after `max_seconds` by `rt.timer` having
    handled at least one, so that under a backlog the pass goes on to the
    deadline steps and to sending. `committed` is told after each message
    done (the sender thread sends its forwards at once); a failed one wrote
    nothing to send.
    """
    done = failed = 0
    started = rt.timer()
    while done + failed < limit:
        if (done or failed) and max_seconds is not None and rt.timer() - started >= max_seconds:
            break
        outcome = process_one(rt, now=now)
        if outcome is None:
            break
        if outcome == "failed":
            failed += 1
            continue
        done += 1
        if committed is not None:
            committed()
    return done, failed


def fire_due_steps(rt: Runtime, *, now: datetime, limit: int = PASS_STEPS) -> int:
    """Deadline steps (leased, exactly once: see app/deadlines/scheduler.py), then daily jobs."""
    handled = sum(scheduler.run_due(rt, now=now, limit=limit).values())
    return handled + digests.run_daily(rt, now=now)


def backoff_from(rt: Runtime) -> Backoff:
    s = rt.settings
    return Backoff(
        base_seconds=s.outbox_backoff_base_seconds,
        cap_seconds=s.outbox_backoff_cap_seconds,
        max_attempts=s.outbox_max_attempts,
    )


def rate_limit_from(rt: Runtime) -> RateLimit | None:
    s = rt.settings
    if s.sender_rate_per_s <= 0:
        return None
    # Every outbound SMS leaves from the hotline number; "default" for the console.
    return RateLimit(sender=s.hotline_number or "default", per_second=s.sender_rate_per_s)


def run_once(
    rt: Runtime,
    gateway: Gateway,
    *,
    now: datetime | None = None,
    should_yield: Callable[[], bool] | None = None,
    send: bool = True,
    committed: Callable[[], None] | None = None,
    timed: bool = True,
    webhooks: bool = True,
) -> PassResult:
    """One pass; `now` pins every stage to one moment (tests), else each stage reads the clock.

    `should_yield` ends the sending stage early (new inbound messages are
    waiting). `send=False` leaves the outbox to a `Sender` thread, which
    `committed` tells when inbound processing or a deadline step has written.
    `timed=False` leaves out the work that comes due by the clock (deadline
    steps, daily digests, office webhooks): a worker woken for every
    webhook looks at it once a poll interval, not at every wake.
    `webhooks=False` leaves office webhooks to an `OfficeWebhooks` lane.
    """

    def moment() -> datetime:
        return now or rt.clock()

    result = PassResult()
    # Messages the webhook spooled while the database was down (app/intake/spool.py).
    result.replayed = Spool(rt.settings.spool_path).replay(rt.sessions)
    began = rt.timer()
    result.inbound, result.inbound_failed = process_inbound(
        rt, now=now, max_seconds=rt.settings.inbound_pass_seconds, committed=committed
    )
    result.cut_short = (
        result.inbound + result.inbound_failed >= PASS_INBOUND
        or rt.timer() - began >= rt.settings.inbound_pass_seconds
    )
    if timed:
        result.steps = fire_due_steps(rt, now=moment())
        result.cut_short |= result.steps >= PASS_STEPS
        if result.steps and committed is not None:
            committed()
    if send:
        result.sent = send_due(rt, gateway, now=moment(), should_yield=should_yield)
    if timed and webhooks:
        # Each attempt reads the clock unless the pass is pinned (its
        # `webhook-timestamp` is when it is sent, not when the pass began).
        result.webhooks = office_webhooks.deliver_due(rt, now=now, limit=PASS_WEBHOOKS)
        result.cut_short |= sum(result.webhooks.values()) >= PASS_WEBHOOKS
    return result


def send_due(
    rt: Runtime,
    gateway: Gateway,
    *,
    now: datetime,
    should_yield: Callable[[], bool] | None = None,
    pool: Executor | None = None,
    drained: Callable[[], None] | None = None,
) -> dict[str, int]:
    """The sending stage: `deliver_due` with the service's settings (`pool`:
    threads to overlap sends on, else the pass starts its own; `drained`:
    told when nothing else is due)."""
    return deliver_due(
        rt.sessions,
        gateway,
        now=now,
        backoff=backoff_from(rt),
        lease=timedelta(seconds=rt.settings.outbox_lease_seconds),
        limit=rt.settings.outbox_batch_size,
        rate=rate_limit_from(rt),
        max_seconds=rt.settings.outbox_pass_seconds,
        should_yield=should_yield,
        batch=rt.settings.outbox_send_batch,
        concurrency=rt.settings.outbox_concurrency,
        # Send for a while before yielding to new inbound: a quarter of the pass.
        yield_after=rt.settings.outbox_pass_seconds / 4,
        pool=pool,
        timer=rt.timer,
        drained=drained,
    )


class Lane:
    """A thread of the worker's process that runs `step` while it says more
    is due, then waits to be poked, at most `worker_poll_seconds` (work that
    comes due by the clock). Subclasses say what a step does."""

    name = "lane"

    def __init__(self, rt: Runtime, *, alive: Callable[[], bool] | None = None) -> None:
        self._rt = rt
        self._alive = alive
        self._due = threading.Event()
        self._stop = threading.Event()
        self._database_down = False
        self._thread = threading.Thread(
            target=self.run_forever, name=f"gridline-{self.name}", daemon=True
        )
        self.passes = 0

    def step(self) -> bool:
        """One pass; True when it stopped with work left (go on at once)."""
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._due.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._due.set()
        self._thread.join(timeout)

    def run_forever(self) -> None:
        while not self._stop.is_set() and (self._alive is None or self._alive()):
            self._due.clear()
            failure: Exception | None = None
            try:
                more = self.step()
            except Exception as exc:
                failure, more = exc, False
            self._database_down = _outage(failure, self._database_down, self.name)
            self.passes += 1
            if not more:
                _idle(
                    self._due,
                    self._rt.settings.worker_poll_seconds,
                    alive=self._alive,
                    stop=self._stop,
                )


class Sender(Lane):
    """The outbox, sent on a thread of its own next to the worker's passes.

    A forward leaves as soon as the transaction that decided it commits
    (`poke`), instead of after the rest of the pass (up to
    `GRIDLINE_INBOUND_PASS_SECONDS` of inbound under steady load, then the
    deadline steps). It sends while anything is due, then waits to be poked.
    Leases keep it from sending what another worker's sender holds.
    """

    name = "sender"

    def __init__(
        self,
        rt: Runtime,
        gateway: Gateway,
        *,
        alive: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(rt, alive=alive)
        self._gateway = gateway
        # Its sends overlap on these threads, kept from pass to pass.
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, rt.settings.outbox_concurrency), thread_name_prefix="gridline-send"
        )

    def step(self) -> bool:
        drained = threading.Event()
        sent = send_due(
            self._rt, self._gateway, now=self._rt.clock(), pool=self._pool, drained=drained.set
        )
        # Busy unless the pass ran out of rows, or stopped at the sender's rate.
        return bool(sent) and not drained.is_set() and "throttled" not in sent

    def run_forever(self) -> None:
        try:
            super().run_forever()
        finally:
            self._pool.shutdown(wait=True)  # idle by now: a pass waits for its sends


class OfficeWebhooks(Lane):
    """Office webhooks on a lane of their own: a receiver that hangs or
    trickles holds this thread, at most `GRIDLINE_WEBHOOK_TIMEOUT_SECONDS` an
    attempt, never the routing, the deadlines or the SMS."""

    name = "webhooks"

    def step(self) -> bool:
        done = office_webhooks.deliver_due(self._rt, limit=PASS_WEBHOOKS)
        return sum(done.values()) >= PASS_WEBHOOKS


def _outage(exc: Exception | None, was_down: bool, who: str) -> bool:
    """Log how a pass ended (a failure; a database outage once, and its end);
    returns whether the database is down."""
    if exc is None:
        if was_down:
            log.warning("%s: database reachable again", who)
        return False
    down = database_unavailable(exc)
    if not down:
        log.exception("%s pass failed", who)
    elif not was_down:
        # Once per outage; the engine reconnects by itself (pre-ping).
        log.warning("database unavailable (%s); retrying", exc.__class__.__name__)
    return down


class WorkerThread:
    """Runs `run_once` in a loop on a daemon thread until `stop()`.

    `wake` and `stop` may be given (events shared with the web process, for a
    worker in a child process: app/worker/process.py); `run_forever` is the
    loop itself. Its outbox goes out on a `Sender` thread and office
    webhooks on an `OfficeWebhooks` thread, both told after each commit.
    """

    def __init__(
        self,
        rt: Runtime,
        gateway: Gateway,
        *,
        wake: Any | None = None,
        stop: Any | None = None,
        alive: Callable[[], bool] | None = None,
    ) -> None:
        self._rt = rt
        self._gateway = gateway
        self._wake = wake if wake is not None else threading.Event()
        self._stop = stop if stop is not None else threading.Event()
        self._alive = alive  # False: stop (the process that started us is gone)
        self._thread = threading.Thread(
            target=self.run_forever, name="gridline-worker", daemon=True
        )
        self.passes = 0
        self._database_down = False

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def run_forever(self) -> None:
        sender = Sender(self._rt, self._gateway, alive=self._alive)
        hooks = OfficeWebhooks(self._rt, alive=self._alive)
        sender.start()
        hooks.start()

        def committed() -> None:
            sender.poke()
            hooks.poke()

        poll = self._rt.settings.worker_poll_seconds
        timed_at: float | None = None  # when the last pass did the timed work
        try:
            while not self._stop.is_set() and (self._alive is None or self._alive()):
                self._wake.clear()
                failure: Exception | None = None
                started = self._rt.timer()
                # Deadlines and office webhooks once a poll interval; a pass
                # that stopped short of its timed work goes on with it.
                timed = timed_at is None or started - timed_at >= poll
                try:
                    result = run_once(
                        self._rt,
                        self._gateway,
                        send=False,
                        committed=committed,
                        timed=timed,
                        webhooks=False,
                    )
                except Exception as exc:
                    failure, result = exc, PassResult()
                if timed and failure is None and not result.timed_left:
                    timed_at = started
                self._database_down = _outage(failure, self._database_down, "worker")
                self.passes += 1
                # A pass that ran out of work waits (a webhook that came
                # meanwhile has set the wake event: no wait then); the sender
                # was told of every commit and polls for the rest itself.
                if not result.more:
                    seconds = self._rt.settings.worker_poll_seconds
                    _idle(self._wake, seconds, alive=self._alive, stop=self._stop)
        finally:
            sender.stop()
            hooks.stop()


def _idle(wake: Any, seconds: float, *, alive: Callable[[], bool] | None, stop: Any) -> None:
    """Wait for `wake`, at most `seconds`; looking at `alive` every second (a
    child process whose parent is gone stops within a second)."""
    if alive is None:
        wake.wait(seconds)
        return
    deadline = time.monotonic() + seconds
    while alive() and not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0 or wake.wait(min(left, 1.0)):
            return
