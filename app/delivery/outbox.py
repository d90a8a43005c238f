"""The durable outbox: SMS are written with the state change that causes them,
then handed to the gateway by the worker.

A row moves pending → sending → sent | failed. `sending` is a lease committed
before the gateway is called, so a worker that dies mid-send leaves a row that
another worker recovers after `lease_until` (a recovered lease is an ambiguous
attempt: the SMS may have left). Every attempt is a `DeliveryAttempt` row.

Rows are leased in batches (`batch`, one transaction), sent (concurrently when
the gateway allows it), and their outcomes recorded in one more transaction. A
leased row is handed to the gateway only while half the lease is left, so a
lease still only has to outlast one gateway call: a row whose turn comes later
is released unsent (back to `pending`, its attempt not counted).
`attempts` doubles as the lease's fencing token: a worker records its outcome
on the row only if the row is still `sending` with the attempt number it
leased; an outcome that comes back after the lease was taken over is kept as a
`DeliveryAttempt` only (a success still marks the row sent: the SMS did leave).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from app.db import database_unavailable, unit_of_work
from app.delivery.status import apply_early_reports, clip_code, not_delivered
from app.models.messages import DeliveryAttempt, OutboundMessage, SenderRate
from routing.delivery import PRIORITY_NORMAL, Backoff, RateLimit
from sms.gateway import (
    Gateway,
    OutgoingSms,
    PermanentSendError,
    SendError,
    SendResult,
    TransientSendError,
    sends_concurrently,
)
from sms.parts import split
from sms.phones import mask_phone, mask_phones_in_text
from sms.templates import render, word

log = logging.getLogger("gridline.outbox")


def enqueue(
    session: Session,
    *,
    to: str,
    template: str,
    params: dict[str, Any],
    locale: str,
    now: datetime,
    case_id: int | None = None,
    inbound_id: int | None = None,
    priority: int = PRIORITY_NORMAL,
    not_before: datetime | None = None,
    max_chars: int | None = None,
) -> OutboundMessage:
    """Add an SMS to the outbox in the caller's transaction (written at its next
    flush: the SMS a change causes go in one INSERT); it is sent from
    `not_before` on when given (quiet hours). A text longer than `max_chars`
    (the provider's limit) becomes numbered parts, a row each, in order
    (`sms.parts.split`); the first is returned."""
    body = render(template, locale, **params)
    parts = split(body, max_chars, marker=word("part", locale)) if max_chars else [body]
    rows = [
        _row(
            to,
            template,
            params,
            locale,
            part,
            now=now,
            case_id=case_id,
            inbound_id=inbound_id,
            priority=priority,
            not_before=not_before,
        )
        for part in parts
    ]
    session.add_all(rows)
    return rows[0]


def _row(
    to: str,
    template: str,
    params: dict[str, Any],
    locale: str,
    body: str,
    *,
    now: datetime,
    case_id: int | None,
    inbound_id: int | None,
    priority: int,
    not_before: datetime | None,
) -> OutboundMessage:
    row: dict[str, Any] = {
        "to_phone": to,
        "template": template,
        "params": params,
        "locale": locale,
        "body": body,
        "case_id": case_id,
        "inbound_id": inbound_id,
        "priority": priority,
        "status": "pending",
        "next_attempt_at": max(now, not_before) if not_before is not None else now,
        "created_at": now,
    }
    return OutboundMessage(**row)


# Column widths of OutboundMessage/DeliveryAttempt: a longer code would make
# PostgreSQL refuse the write that records the outcome.
_MESSAGE_WIDTH = 2000


def _text(message: str) -> str:
    return message[:_MESSAGE_WIDTH]


@dataclass(frozen=True)
class _Lease:
    id: int
    attempt: int  # the row's `attempts` after leasing: the fencing token
    sms: OutgoingSms


@dataclass(frozen=True)
class _Throttled:
    until: datetime  # when the sender may send again


def _bucket(session: Session, limit: RateLimit, *, now: datetime) -> SenderRate:
    """The sender's bucket row, created on first use, locked for this transaction."""
    values = {"sender": limit.sender, "tat": now, "updated_at": now}
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = pg_insert(SenderRate).values(values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite_insert(SenderRate).values(values).on_conflict_do_nothing()
    else:  # pragma: no cover - other dialects are not supported targets
        stmt = insert(SenderRate).values(values)
    session.execute(stmt)
    row = session.get(SenderRate, limit.sender, with_for_update=True, populate_existing=True)
    assert row is not None
    return row


_Outcome = SendResult | SendError | None  # None: not sent, the lease is given back


@dataclass
class _Batch:
    leases: list[_Lease] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # expired leases given up on
    last: bool = False  # fewer rows were due than asked for: nothing else is due now


def _due_rows(
    session: Session, *, now: datetime, exclude: set[int], size: int
) -> list[OutboundMessage]:
    """The `size` most urgent due rows, locked (rows other workers hold are skipped).

    Two queries, each one range of `ix_outbound_messages_queue`: expired leases
    (rare), and the pending rows by (priority, due time); merged so that an
    expired lease goes first unless a pending row has a higher priority.
    """

    def locked(stmt: Any) -> list[OutboundMessage]:
        if exclude:
            # Never twice in one pass, even with a zero backoff.
            stmt = stmt.where(OutboundMessage.id.not_in(exclude))
        return list(session.scalars(stmt.limit(size).with_for_update(skip_locked=True)))

    expired = locked(
        select(OutboundMessage)
        .where(OutboundMessage.status == "sending", OutboundMessage.lease_until < now)
        .order_by(OutboundMessage.priority.desc(), OutboundMessage.id)
    )
    pending = locked(
        select(OutboundMessage)
        .where(OutboundMessage.status == "pending", OutboundMessage.next_attempt_at <= now)
        .order_by(
            OutboundMessage.priority.desc(), OutboundMessage.next_attempt_at, OutboundMessage.id
        )
    )
    merged: list[OutboundMessage] = []
    e = p = 0
    while len(merged) < size and (e < len(expired) or p < len(pending)):
        if e < len(expired) and (p == len(pending) or pending[p].priority <= expired[e].priority):
            merged.append(expired[e])
            e += 1
        else:
            merged.append(pending[p])
            p += 1
    return merged


def _lease_batch(
    session: Session,
    *,
    now: datetime,
    lease: timedelta,
    backoff: Backoff,
    exclude: set[int],
    size: int,
    rate: RateLimit | None = None,
) -> _Batch | _Throttled:
    """Lease up to `size` of the most urgent due rows (no more than the sender's
    rate allows now); expired leases out of attempts are failed instead. An
    empty batch: none is due; `_Throttled`: the rate allows no send now."""
    bucket: SenderRate | None = None
    if rate is not None and rate.per_second > 0:
        # Locked first: workers take turns here, so the rate holds across them.
        bucket = _bucket(session, rate, now=now)
        allowed = rate.allowance(bucket.tat, now)
        if allowed == 0:
            until = rate.throttled_until(bucket.tat, now)
            return _Throttled(until or now)
        size = min(size, allowed)
    batch = _Batch()
    rows = _due_rows(session, now=now, exclude=exclude, size=size)
    batch.last = len(rows) < size
    for row in rows:
        if row.status == "sending":
            # A worker died holding this lease: the SMS may or may not have left.
            session.add(
                DeliveryAttempt(
                    outbound_id=row.id,
                    at=now,
                    outcome="lost",
                    error_message="lease expired before the attempt was recorded",
                    ambiguous=True,
                )
            )
            if row.attempts >= backoff.max_attempts:
                # A message that kills its worker every time must not do so forever.
                row.status = "failed"
                row.lease_until = None
                row.error_code = "lease_lost"
                row.error_message = (
                    f"gave up after {row.attempts} attempts: the last lease expired unrecorded"
                )
                not_delivered(session, row, now=now)
                log.error(
                    "SMS %s to %s: failed (%s)",
                    row.id,
                    mask_phone(row.to_phone),
                    row.error_message,
                )
                batch.failed.append(row.id)
                continue
        row.status = "sending"
        row.lease_until = now + lease
        row.attempts += 1
        sms = OutgoingSms(
            to=row.to_phone,
            body=row.body,
            template=row.template,
            params=dict(row.params or {}),
            reference=str(row.id),
        )
        batch.leases.append(_Lease(id=row.id, attempt=row.attempts, sms=sms))
    if bucket is not None and rate is not None and batch.leases:
        bucket.tat = rate.after(bucket.tat, now, len(batch.leases))
        bucket.updated_at = now
    return batch


def _record(
    session: Session,
    lease: _Lease,
    *,
    now: datetime,
    outcome: _Outcome,
    backoff: Backoff,
    rng: random.Random | None = None,
) -> str:
    row = session.get(OutboundMessage, lease.id, with_for_update=True)
    done = _Recorded()
    result = _apply(
        session, row, lease, now=now, outcome=outcome, backoff=backoff, rng=rng, done=done
    )
    done.flush(session, now=now)
    return result


@dataclass
class _Recorded:
    """What recording a batch's outcomes writes after the rows: the attempt rows
    (one INSERT for all: they need no ids back), and the rows marked sent, for
    delivery reports that came before their SID."""

    attempts: list[dict[str, Any]] = field(default_factory=list)
    sent: list[OutboundMessage] = field(default_factory=list)

    def attempt(
        self,
        row: OutboundMessage,
        *,
        at: datetime,
        outcome: str,
        error_code: str | None = None,
        error_message: str | None = None,
        ambiguous: bool = False,
    ) -> None:
        self.attempts.append(
            {
                "outbound_id": row.id,
                "at": at,
                "outcome": outcome,
                "error_code": error_code,
                "error_message": error_message,
                "ambiguous": ambiguous,
            }
        )

    def flush(self, session: Session, *, now: datetime) -> None:
        if self.attempts:
            session.execute(insert(DeliveryAttempt), self.attempts)
        apply_early_reports(session, self.sent, now=now)


def _record_batch(
    session: Session,
    outcomes: Sequence[tuple[_Lease, _Outcome]],
    *,
    now: datetime,
    backoff: Backoff,
    rng: random.Random | None = None,
) -> list[str]:
    """`_record` for a batch: its rows locked by one query (in id order, as every
    worker locks them), early delivery reports looked up by one more."""
    ids = sorted(lease.id for lease, _ in outcomes)
    found = {
        row.id: row
        for row in session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.id.in_(ids))
            .order_by(OutboundMessage.id)
            .with_for_update()
        )
    }
    done = _Recorded()
    results = [
        _apply(
            session,
            found.get(lease.id),
            lease,
            now=now,
            outcome=outcome,
            backoff=backoff,
            rng=rng,
            done=done,
        )
        for lease, outcome in outcomes
    ]
    done.flush(session, now=now)
    return results


def _apply(
    session: Session,
    row: OutboundMessage | None,
    lease: _Lease,
    *,
    now: datetime,
    outcome: _Outcome,
    backoff: Backoff,
    rng: random.Random | None,
    done: _Recorded,
) -> str:
    """One send's outcome on its (locked) row; its attempt row and, when sent,
    the row go to `done`, which the caller flushes after the batch."""
    if row is None:
        return "skipped"
    current = row.status == "sending" and row.attempts == lease.attempt
    if outcome is None:
        # Never handed to the gateway: the lease is given back, the attempt uncounted.
        if current:
            row.status = "pending"
            row.attempts -= 1
            row.lease_until = None
        return "released"
    if isinstance(outcome, SendError):
        permanent = isinstance(outcome, PermanentSendError)
        done.attempt(
            row,
            at=now,
            outcome="permanent" if permanent else "transient",
            error_code=clip_code(outcome.code),
            error_message=_text(outcome.message),
            ambiguous=isinstance(outcome, TransientSendError) and outcome.ambiguous,
        )
        if not current:
            # Another worker took the row over after our lease expired; it decides.
            return "stale"
        row.error_code = clip_code(outcome.code)
        row.error_message = _text(outcome.message)
        row.lease_until = None
        if permanent:
            row.status = "failed"
            not_delivered(session, row, now=now)
        elif row.attempts >= backoff.max_attempts:
            row.status = "failed"
            row.error_message = _text(f"gave up after {row.attempts} attempts: {outcome.message}")
            not_delivered(session, row, now=now)
        else:
            row.status = "pending"
            row.next_attempt_at = now + backoff.delay(row.attempts, rng=rng)
        log.warning(
            "SMS %s to %s: %s (%s)",
            row.id,
            mask_phone(row.to_phone),
            row.status,
            mask_phones_in_text(outcome.message),
        )
        return row.status
    done.attempt(row, at=now, outcome="sent")
    if not current and row.status == "sent":
        # Sent twice: the other worker's send also went through. The attempt
        # rows tell; the row keeps the first provider sid.
        log.error(
            "SMS %s to %s was sent twice (lease taken over)", row.id, mask_phone(row.to_phone)
        )
        return "stale"
    row.status = "sent"
    row.provider_sid = outcome.provider_sid
    row.sent_at = now
    row.lease_until = None
    row.error_code = None
    row.error_message = None
    done.sent.append(row)
    return "sent" if current else "stale"


def _record_durably(
    sessions: sessionmaker[Session],
    lease: _Lease,
    *,
    deadline: float,
    timer: Callable[[], float],
    **kwargs: Any,
) -> str:
    """Record a send's outcome, waiting out a database restart while our lease
    holds: an outcome that is not recorded makes the row look lost, and a lost
    row is sent again after its lease expires (an SMS the resident gets twice)."""
    pause = 0.05
    while True:
        try:
            with unit_of_work(sessions) as session:
                return _record(session, lease, **kwargs)
        except Exception as exc:
            if not database_unavailable(exc) or timer() + pause > deadline:
                raise
            log.warning("SMS %s: database unavailable, outcome not yet recorded", lease.id)
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


def _record_outcomes(
    sessions: sessionmaker[Session],
    outcomes: Sequence[tuple[_Lease, _Outcome]],
    *,
    deadline: float,
    timer: Callable[[], float],
    now: datetime,
    backoff: Backoff,
    rng: random.Random | None,
) -> list[str]:
    """Record a batch's outcomes in one transaction; should that fail, each on
    its own, waiting out a database restart (`_record_durably`)."""
    try:
        with unit_of_work(sessions) as session:
            return _record_batch(session, outcomes, now=now, backoff=backoff, rng=rng)
    except Exception:
        log.warning(
            "recording %d outcomes together failed; recording each on its own",
            len(outcomes),
            exc_info=True,
        )
    results: list[str] = []
    error: Exception | None = None
    for lease, outcome in outcomes:
        try:
            results.append(
                _record_durably(
                    sessions,
                    lease,
                    deadline=deadline,
                    timer=timer,
                    now=now,
                    outcome=outcome,
                    backoff=backoff,
                    rng=rng,
                )
            )
        except Exception as exc:  # the others are still recorded
            error = error or exc
    if error is not None:
        raise error
    return results


def _send(gateway: Gateway, sms: OutgoingSms) -> SendResult | SendError:
    try:
        return gateway.send(sms)
    except SendError as exc:
        return exc
    except Exception as exc:  # a gateway bug must not kill the worker or lose the row
        log.exception("gateway %s raised", gateway.name)
        return TransientSendError(
            f"gateway error: {exc.__class__.__name__}", code="internal", ambiguous=True
        )


def _send_batch(
    gateway: Gateway,
    leases: Sequence[_Lease],
    *,
    pool: Executor | None,
    must_go: bool,
    may_start: Callable[[], bool],
) -> list[_Outcome]:
    """Each lease's outcome, in order; None for a lease that `may_start()` no
    longer allowed to go when its turn came (the first goes when `must_go`).
    On `pool` the sends overlap, else they go one after another."""

    def attempt(index: int, lease: _Lease) -> _Outcome:
        if (must_go and index == 0) or may_start():
            return _send(gateway, lease.sms)
        return None

    if pool is None or len(leases) < 2:
        return [attempt(i, lease) for i, lease in enumerate(leases)]
    futures = [pool.submit(attempt, i, lease) for i, lease in enumerate(leases)]
    return [future.result() for future in futures]


def deliver_due(
    sessions: sessionmaker[Session],
    gateway: Gateway,
    *,
    now: datetime,
    backoff: Backoff,
    lease: timedelta = timedelta(minutes=2),
    limit: int = 50,
    rng: random.Random | None = None,
    rate: RateLimit | None = None,
    max_seconds: float | None = None,
    should_yield: Callable[[], bool] | None = None,
    batch: int = 20,
    concurrency: int = 1,
    yield_after: float = 0.0,
    pool: Executor | None = None,
    timer: Callable[[], float] = time.monotonic,
    drained: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Send what is due, most urgent first, each row at most once; returns counts by outcome.

    Outcomes: `sent`, `pending` (transient failure, retried after a backoff),
    `failed` (permanent, or out of attempts), `stale` (the lease was taken over
    while the gateway call ran), `skipped` (the row vanished), and
    `throttled` (1 when the pass stopped at the sender's `rate`).

    Rows are leased `batch` at a time (one transaction), sent, and their
    outcomes recorded together (one more). With `concurrency` > 1 and a gateway
    that allows it (`sms.gateway.sends_concurrently`), up to that many sends
    overlap on threads: `pool`'s (a sender's, kept from pass to pass: starting
    threads for every pass costs more than some of the sends), else a pool of
    this pass's own; otherwise they go in order.

    The pass also ends after `max_seconds`, or as soon as `should_yield()` says
    so (the webhook woke the worker), looked at between batches: new inbound
    messages are processed, and their urgent forwards leased, before the rest
    of a backlog. A pass sends one batch at least, and yields only after
    `yield_after` seconds of sending: under steady inbound the webhook wakes
    the worker all the time, and a pass that sent one batch only would let the
    forwards its inbound stage just wrote fall behind. Seconds are read from
    `timer` (monotonic; tests inject their own). `drained` is called when the
    pass ends because nothing else is due (a sender then waits to be told).
    """
    if batch < 1 or concurrency < 1:
        raise ValueError("deliver_due needs batch >= 1 and concurrency >= 1")
    counts: dict[str, int] = {}
    seen: set[int] = set()
    # Leases are stamped from `now`, the pass's logical time. Stop leasing once
    # real time has eaten half the lease, so that a slow gateway (timeouts back
    # to back) cannot leave later rows leased in the past, where another worker
    # would take them over mid-send. The rest waits for the next pass; the
    # first row always goes, so every pass makes progress. The same cut-off
    # holds within a batch: a row whose turn comes after it is given back.
    budget = lease.total_seconds() / 2
    if max_seconds is not None:
        budget = min(budget, max_seconds)
    started = timer()
    send_deadline = started + lease.total_seconds() / 2

    def may_start() -> bool:
        return timer() < send_deadline

    own_pool: ThreadPoolExecutor | None = None
    any_sent = False
    try:
        while len(seen) < limit and (not seen or timer() - started < budget):
            size = min(batch, limit - len(seen))
            if (
                seen
                and should_yield is not None
                and timer() - started >= yield_after
                and should_yield()
            ):
                break
            with unit_of_work(sessions) as session:
                leased = _lease_batch(
                    session,
                    now=now,
                    lease=lease,
                    backoff=backoff,
                    exclude=seen,
                    size=size,
                    rate=rate,
                )
            if isinstance(leased, _Throttled):
                counts["throttled"] = 1
                break
            seen.update(leased.failed)
            if leased.failed:
                counts["failed"] = counts.get("failed", 0) + len(leased.failed)
            if not leased.leases:
                if leased.failed:
                    continue
                if drained is not None:
                    drained()
                break
            seen.update(lease_.id for lease_ in leased.leases)
            overlap: Executor | None = None
            if concurrency > 1 and len(leased.leases) > 1 and sends_concurrently(gateway):
                if pool is None and own_pool is None:
                    own_pool = ThreadPoolExecutor(
                        max_workers=concurrency, thread_name_prefix="gridline-send"
                    )
                overlap = pool or own_pool
            outcomes = _send_batch(
                gateway, leased.leases, pool=overlap, must_go=not any_sent, may_start=may_start
            )
            any_sent = True
            results = _record_outcomes(
                sessions,
                list(zip(leased.leases, outcomes, strict=True)),
                deadline=send_deadline,
                timer=timer,
                now=now,
                backoff=backoff,
                rng=rng,
            )
            for result in results:
                if result != "released":
                    counts[result] = counts.get(result, 0) + 1
            if leased.last:
                # What comes due meanwhile is the next pass's (the sender is told).
                if drained is not None:
                    drained()
                break
    finally:
        if own_pool is not None:
            own_pool.shutdown(wait=True)
    return counts


def pending_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count()).where(OutboundMessage.status.in_(("pending", "sending")))
        )
        or 0
    )
