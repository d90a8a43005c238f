"""The background worker: inbound processing, deadline steps, the outbox sender.

`run_once` does one pass and is what tests call with an explicit `now`; the
thread loop calls it until stopped, woken early by the webhook when a
message arrives, and sends the outbox on a thread of its own (`Sender`), told
whenever a pass commits something to send.
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

from sqlalchemy import select

from app import memo
from app.cases.changes import Ctx
from app.db import database_unavailable, unit_of_work, writers_waiting
from app.deadlines import digests, scheduler
from app.delivery import office_webhooks as webhooks_out
from app.delivery.outbox import Backoff, RateLimit, deliver_due
from app.inbound import messages as inbound
from app.intake.spool import Spool
from app.models.messages import InboundMessage
from app.runtime import Runtime
from app.sqlite_lock import set_polite_writer
from app.worker.pressure import Pressure
from sms.gateway import Gateway

log = logging.getLogger("gridline.worker")


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
    def more(self) -> bool:
        """Whether the next pass should start at once: a stage stopped before it
        ran out of work (or, sending in the pass, it sent). Otherwise the
        worker waits to be woken: a webhook arriving during the pass has
        already woken it."""
        sending = bool(self.sent) and "throttled" not in self.sent
        return self.cut_short or sending


def process_inbound(
    rt: Runtime,
    *,
    now: datetime | None = None,
    limit: int = 100,
    max_seconds: float | None = None,
    committed: Callable[[], None] | None = None,
    hold: Callable[[], object] | None = None,
) -> tuple[int, int]:
    """Process stored messages, up to `inbound_batch` in one transaction; returns
    (done, failed).

    Each transaction reads the clock (`now` pins it: tests). Stops after
    `max_seconds` (wall clock), having handled at least one message, so that,
    under a backlog, the pass goes on to the deadline steps and to sending
    instead of holding them back until the whole backlog is processed.
    `committed` is called after each transaction that processed messages (the
    sender thread sends their forwards at once); `hold` before each (the
    server's worker gives way to a burst of webhooks: app/worker/pressure.py).
    """
    done = failed = 0
    started = time.monotonic()
    tell = committed or (lambda: None)

    def out_of_time() -> bool:
        return max_seconds is not None and time.monotonic() - started >= max_seconds

    while done + failed < limit:
        if (done or failed) and out_of_time():
            break
        if hold is not None:
            hold()
        want = min(rt.settings.inbound_batch, limit - done - failed, _fits(rt))
        one_by_one: list[int | None] = [None]  # the next message, on its own
        if want > 1:
            taken, ok = process_batch(rt, now=now or rt.clock(), limit=want, enough=out_of_time)
            if not taken:
                break
            if ok:
                done += len(taken)
                tell()
                continue
            one_by_one = list(taken)  # the batch rolled back: each on its own
        for message_id in one_by_one:
            outcome = process_one(rt, now=now or rt.clock(), message_id=message_id)
            if outcome is None:
                return done, failed
            if outcome == "done":
                done += 1
                tell()
            elif outcome == "failed":
                failed += 1
    return done, failed


_PER_MESSAGE = "inbound_seconds_per_message"

# A batch prefetches for its first few messages, then, if it has not been cut
# short (its time, a writer waiting), for the rest: a batch cut after a handful
# does not pay for looking up twenty.
PREFETCH_FIRST = 8


def _fits(rt: Runtime) -> int:
    """How many messages the last batch's pace fits in `inbound_tx_seconds` (and
    one more): a batch takes no more than that, so the messages it prefetches
    for are mostly the ones it gets to."""
    pace = rt.caches.get(_PER_MESSAGE)
    if not isinstance(pace, float) or pace <= 0:
        return rt.settings.inbound_batch
    return max(2, int(rt.settings.inbound_tx_seconds / pace) + 1)


def process_batch(
    rt: Runtime, *, now: datetime, limit: int, enough: Callable[[], bool] = lambda: False
) -> tuple[list[int], bool]:
    """Process up to `limit` stored messages (one per sender) in ONE transaction.

    Returns the ids of the messages taken, in order, and whether their
    transaction committed. It takes no further message once it has run
    `inbound_tx_seconds`, `enough()` says so, or (SQLite) it has run
    `inbound_yield_seconds` and an eager writer waits for the write lock it
    holds (the rest stay `received`). Its time runs from when it holds its
    messages and the lock: on SQLite the worker, a polite writer, often waits
    for the lock first, and a batch that counted that wait committed after
    one message, paid its fixed cost per message and fell behind. The pace
    that sizes the next batch (`_fits`) leaves the wait out too.
    Lookups are memoised for the transaction and prefetched (`inbound.prefetch`:
    for the first `PREFETCH_FIRST` messages, then for the rest); outbox rows
    are written together at its end (the loop guards count them while queued).
    Autoflush stays on: a message may read what an earlier one of the batch
    wrote (a case it opened, its participants), as it would after that one's
    commit; a later prefetch sees it too. When the batch raises
    it is rolled back and the ids returned with False: the caller processes
    them one by one, so a failing message costs only itself.
    """
    leased: list[int] = []
    taken: list[int] = []
    try:
        with unit_of_work(rt.sessions) as session:
            memo.enable(session)
            messages = inbound.next_batch(session, limit=limit)
            leased = [m.id for m in messages]
            if not messages:
                return [], True
            # From here on the transaction holds the lock (SQLite's write lock,
            # the rows' on PostgreSQL): the time it waited for it is not its own.
            began = time.monotonic()
            prefetched = 0
            for n, message in enumerate(messages):
                ran = time.monotonic() - began
                if taken and (
                    ran >= rt.settings.inbound_tx_seconds
                    or enough()
                    or (ran >= rt.settings.inbound_yield_seconds and writers_waiting(session))
                ):
                    break
                if n == prefetched:  # the first few, then (not cut short) the rest
                    ahead = messages[n : n + PREFETCH_FIRST] if n == 0 else messages[n:]
                    inbound.prefetch(Ctx(session=session, rt=rt, now=now), ahead)
                    prefetched += len(ahead)
                taken.append(message.id)
                inbound.process(Ctx(session=session, rt=rt, now=now), message)
            memo.flush_deferred(session)  # the batch's outbox rows and steps
            rt.caches[_PER_MESSAGE] = (time.monotonic() - began) / len(taken)
        return taken, True
    except Exception:
        if not leased:
            raise  # taking the batch failed (the database is down): as before
        log.warning(
            "a batch of %d inbound messages failed; processing them one by one",
            len(taken),
            exc_info=True,
        )
        return taken or leased[:1], False


def process_one(rt: Runtime, *, now: datetime, message_id: int | None = None) -> str | None:
    """Process one stored message in its own transaction: the next one, or the
    given one if it is still `received`. Returns `done`, `failed` (it raised:
    marked `failed` with its error), `skipped` (the given one was no longer
    waiting) or None when there was none to process."""
    taken: int | None = None
    try:
        with unit_of_work(rt.sessions) as session:
            if message_id is None:
                message = inbound.next_unprocessed(session)
            else:
                message = session.scalar(
                    select(InboundMessage)
                    .where(InboundMessage.id == message_id, InboundMessage.status == "received")
                    .with_for_update(skip_locked=True)
                )
            if message is None:
                return None if message_id is None else "skipped"
            taken = message.id
            inbound.process(Ctx(session=session, rt=rt, now=now), message)
        return "done"
    except Exception as exc:
        if taken is None:
            raise
        # The transaction rolled back; mark the message failed in a new one
        # so that it is visible and never retried in a loop.
        log.exception("inbound message %s failed", taken)
        with unit_of_work(rt.sessions) as session:
            row = session.get(InboundMessage, taken)
            if row is not None:
                row.status = "failed"
                row.error = repr(exc)[:2000]
                row.processed_at = now
        return "failed"


def fire_due_steps(rt: Runtime, *, now: datetime, limit: int = 100) -> int:
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
    hold: Callable[[], object] | None = None,
) -> PassResult:
    """One pass; `now` pins every stage to one moment (tests), else each stage reads the clock.

    `should_yield` ends the sending stage early (new inbound messages are
    waiting). `send=False` leaves the outbox to a `Sender` thread, which
    `committed` tells when inbound processing or a deadline step has written.
    `hold` goes to `process_inbound`.
    """

    def moment() -> datetime:
        return now or rt.clock()

    result = PassResult()
    # Messages the webhook spooled while the database was down (app/intake/spool.py).
    result.replayed = Spool(rt.settings.spool_path).replay(rt.sessions)
    began = time.monotonic()
    result.inbound, result.inbound_failed = process_inbound(
        rt,
        now=now,
        limit=PASS_INBOUND,
        max_seconds=rt.settings.inbound_pass_seconds,
        committed=committed,
        hold=hold,
    )
    result.cut_short = (
        result.inbound + result.inbound_failed >= PASS_INBOUND
        or time.monotonic() - began >= rt.settings.inbound_pass_seconds
    )
    result.steps = fire_due_steps(rt, now=moment(), limit=PASS_STEPS)
    result.cut_short |= result.steps >= PASS_STEPS
    if result.steps and committed is not None:
        committed()
    if send:
        result.sent = send_due(rt, gateway, now=moment(), should_yield=should_yield)
    result.webhooks = webhooks_out.deliver_due(rt, now=moment(), limit=PASS_WEBHOOKS)
    result.cut_short |= sum(result.webhooks.values()) >= PASS_WEBHOOKS
    return result


# The most a pass takes of each (then the next pass goes on at once).
PASS_INBOUND = 100
PASS_STEPS = 100
PASS_WEBHOOKS = 50


def send_due(
    rt: Runtime,
    gateway: Gateway,
    *,
    now: datetime,
    should_yield: Callable[[], bool] | None = None,
    pool: Executor | None = None,
) -> dict[str, int]:
    """The sending stage: `deliver_due` with the service's settings (`pool`:
    threads to overlap sends on, else the pass starts its own)."""
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
    )


class Sender:
    """The outbox, sent on a thread of its own next to the worker's passes.

    A forward leaves as soon as the transaction that decided it commits
    (`poke`), instead of after the rest of the pass (up to
    `GRIDLINE_INBOUND_PASS_SECONDS` of inbound under steady load, then the
    deadline steps). It sends while anything is due, then waits to be poked,
    at most `worker_poll_seconds` (retries come due by the clock). Leases keep
    it from sending what another worker's sender holds.
    """

    def __init__(
        self,
        rt: Runtime,
        gateway: Gateway,
        *,
        alive: Callable[[], bool] | None = None,
        due: Any | None = None,
        stop: Any | None = None,
    ) -> None:
        self._rt = rt
        self._gateway = gateway
        self._alive = alive
        # `due` and `stop`: events shared with other processes, for a sender
        # in a process of its own (app/worker/process.py).
        self._due = due if due is not None else threading.Event()
        self._stop = stop if stop is not None else threading.Event()
        self._database_down = False
        self._thread = threading.Thread(
            target=self.run_forever, name="gridline-sender", daemon=True
        )
        # Its sends overlap on these threads, kept from pass to pass.
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, rt.settings.outbox_concurrency), thread_name_prefix="gridline-send"
        )
        self.passes = 0

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._due.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._due.set()
        self._thread.join(timeout)

    def run_forever(self) -> None:
        try:
            self._run()
        finally:
            self._pool.shutdown(wait=True)  # idle by now: a pass waits for its sends

    def _run(self) -> None:
        # An eager writer (app/sqlite_lock.py), as webhooks and people are: its
        # transactions are short (a lease, the outcomes), and an inbound batch
        # commits early for it, so a decided forward does not wait for the next.
        while not self._stop.is_set() and (self._alive is None or self._alive()):
            self._due.clear()
            failure: Exception | None = None
            try:
                sent = send_due(self._rt, self._gateway, now=self._rt.clock(), pool=self._pool)
            except Exception as exc:
                failure, sent = exc, {}
            self._database_down = _outage(failure, self._database_down, "sender")
            self.passes += 1
            # A pass that stopped at the sender's rate is not busy: wait.
            if not sent or "throttled" in sent:
                _idle(
                    self._due,
                    self._rt.settings.worker_poll_seconds,
                    alive=self._alive,
                    stop=self._stop,
                )


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

    `wake` and `stop` may be given (multiprocessing events, for a worker in a
    child process: app/worker/process.py); `run_forever` is the loop itself.
    Its outbox goes out on a `Sender` thread, or with `poke` given, from a
    sender elsewhere (a process of its own), told after each commit by `poke`.
    With `pressure` (`gridline serve`), it holds before each batch of inbound
    messages while the server's webhooks come in a burst (app/worker/pressure.py).
    """

    def __init__(
        self,
        rt: Runtime,
        gateway: Gateway,
        *,
        wake: Any | None = None,
        stop: Any | None = None,
        alive: Callable[[], bool] | None = None,
        poke: Callable[[], None] | None = None,
        pressure: Pressure | None = None,
    ) -> None:
        self._rt = rt
        self._gateway = gateway
        self._poke = poke
        self._pressure = pressure
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

    def _hold(self) -> None:
        if self._pressure is not None:
            self._pressure.hold(self._stop.wait)

    def run_forever(self) -> None:
        # Webhooks and people go first to SQLite's write lock (app/sqlite_lock.py).
        set_polite_writer()
        sender = Sender(self._rt, self._gateway, alive=self._alive) if self._poke is None else None
        if sender is not None:
            sender.start()
        poke = sender.poke if sender is not None else self._poke
        assert poke is not None
        try:
            while not self._stop.is_set() and (self._alive is None or self._alive()):
                self._wake.clear()
                failure: Exception | None = None
                try:
                    result = run_once(
                        self._rt, self._gateway, send=False, committed=poke, hold=self._hold
                    )
                except Exception as exc:
                    failure, result = exc, PassResult()
                self._database_down = _outage(failure, self._database_down, "worker")
                self.passes += 1
                # A pass that ran out of work waits (a webhook that came
                # meanwhile has set the wake event: no wait then); the sender
                # was told of every commit and polls for the rest itself.
                if not result.more:
                    seconds = self._rt.settings.worker_poll_seconds
                    _idle(self._wake, seconds, alive=self._alive, stop=self._stop)
        finally:
            if sender is not None:
                sender.stop()


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
