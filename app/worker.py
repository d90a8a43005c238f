"""The background worker: inbound processing, deadline steps, the outbox sender.

`run_once` does one pass and is what tests call with an explicit `now`; the
thread loop calls it until stopped, woken early by the webhook when a
message arrives.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app import digests, inbound, scheduler, webhooks_out
from app.cases import Ctx
from app.db import database_unavailable, unit_of_work
from app.models import InboundMessage
from app.outbox import Backoff, RateLimit, deliver_due
from app.runtime import Runtime
from app.spool import Spool
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

    @property
    def busy(self) -> bool:
        # A pass that stopped at the sender's rate is not busy: the worker waits.
        sent = {} if "throttled" in self.sent else self.sent
        return bool(
            self.replayed
            or self.inbound
            or self.inbound_failed
            or self.steps
            or sent
            or self.webhooks
        )


def process_inbound(
    rt: Runtime, *, now: datetime, limit: int = 100, max_seconds: float | None = None
) -> tuple[int, int]:
    """Process stored messages one transaction each; returns (done, failed).

    Stops after `max_seconds` (wall clock) so that, under a backlog, the pass
    goes on to send what is already decided instead of holding every forward
    back until the whole backlog is processed.
    """
    done = failed = 0
    started = time.monotonic()
    for _ in range(limit):
        if (
            max_seconds is not None
            and (done or failed)
            and time.monotonic() - started >= max_seconds
        ):
            break
        message_id: int | None = None
        try:
            with unit_of_work(rt.sessions) as session:
                message = inbound.next_unprocessed(session)
                if message is None:
                    break
                message_id = message.id
                inbound.process(Ctx(session=session, rt=rt, now=now), message)
            done += 1
        except Exception as exc:
            if message_id is None:
                raise
            # The transaction rolled back; mark the message failed in a new one
            # so that it is visible and never retried in a loop.
            log.exception("inbound message %s failed", message_id)
            with unit_of_work(rt.sessions) as session:
                row = session.get(InboundMessage, message_id)
                if row is not None:
                    row.status = "failed"
                    row.error = repr(exc)[:2000]
                    row.processed_at = now
            failed += 1
    return done, failed


def fire_due_steps(rt: Runtime, *, now: datetime, limit: int = 100) -> int:
    """Deadline steps (leased, exactly once: see app/scheduler.py), then daily jobs."""
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
) -> PassResult:
    """One pass; `now` pins every stage to one moment (tests), else each stage reads the clock.

    `should_yield` ends the sending stage early (new inbound messages are waiting).
    """

    def moment() -> datetime:
        return now or rt.clock()

    result = PassResult()
    # Messages the webhook spooled while the database was down (app/spool.py).
    result.replayed = Spool(rt.settings.spool_path).replay(rt.sessions)
    result.inbound, result.inbound_failed = process_inbound(
        rt, now=moment(), max_seconds=rt.settings.inbound_pass_seconds
    )
    result.steps = fire_due_steps(rt, now=moment())
    result.sent = deliver_due(
        rt.sessions,
        gateway,
        now=moment(),
        backoff=backoff_from(rt),
        lease=timedelta(seconds=rt.settings.outbox_lease_seconds),
        limit=rt.settings.outbox_batch_size,
        rate=rate_limit_from(rt),
        max_seconds=rt.settings.outbox_pass_seconds,
        should_yield=should_yield,
    )
    result.webhooks = webhooks_out.deliver_due(rt, now=moment())
    return result


class WorkerThread:
    """Runs `run_once` in a loop on a daemon thread until `stop()`."""

    def __init__(self, rt: Runtime, gateway: Gateway) -> None:
        self._rt = rt
        self._gateway = gateway
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gridline-worker", daemon=True)
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

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                result = run_once(self._rt, self._gateway, should_yield=self._wake.is_set)
            except Exception as exc:
                if not database_unavailable(exc):
                    log.exception("worker pass failed")
                elif not self._database_down:
                    # Once per outage; the engine reconnects by itself (pre-ping).
                    log.warning("database unavailable (%s); retrying", exc.__class__.__name__)
                self._database_down = database_unavailable(exc)
                result = PassResult()
            else:
                if self._database_down:
                    log.warning("database reachable again")
                self._database_down = False
            self.passes += 1
            if not result.busy:
                self._wake.wait(self._rt.settings.worker_poll_seconds)
