"""The outbox end to end: rows in a real database (SQLite and PostgreSQL), sent by
the real TwilioGateway to the fake Twilio server over HTTP.

Time only moves when a test passes a later `now`; nothing sleeps.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from app.db import unit_of_work
from app.delivery.outbox import enqueue
from app.delivery.status import record_delivery_status
from app.models.messages import DeliveryAttempt, DeliveryReport, OutboundMessage
from app.runtime import Runtime
from routing.delivery import PRIORITY_URGENT, Backoff
from sms.gateway import OutgoingSms, SendResult, TransientSendError
from sms.twilio_gateway import TwilioGateway
from tests.conftest import Clock
from tests.fake_twilio import FakeTwilio, Hang, Status
from tests.outbox_support import HOTLINE, LEASE, PhoneBlock, deliver, rows, twilio_gateway

_block = PhoneBlock("000")
phone = _block.phone
add = _block.add


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio.serve() as server:
        yield server


@pytest.fixture
def gateway(fake: FakeTwilio) -> Iterator[TwilioGateway]:
    gw = twilio_gateway(fake)
    yield gw
    gw.close()


def row(rt: Runtime, message_id: int) -> OutboundMessage:
    with rt.sessions() as session:
        found = session.get(OutboundMessage, message_id)
        assert found is not None
        return found


def attempts(rt: Runtime, message_id: int) -> list[DeliveryAttempt]:
    with rt.sessions() as session:
        stmt = (
            select(DeliveryAttempt)
            .where(DeliveryAttempt.outbound_id == message_id)
            .order_by(DeliveryAttempt.id)
        )
        return list(session.scalars(stmt))


def requests_to(fake: FakeTwilio, number: int) -> int:
    return sum(1 for r in fake.requests if r.to == phone(number))


# --- sending ----------------------------------------------------------------


def test_sent_rows_get_the_provider_sid_and_one_attempt_each(
    rt: Runtime, clock: Clock, fake: FakeTwilio, gateway: TwilioGateway
) -> None:
    ids = add(rt, clock.now, 1, 2, 3)

    assert deliver(rt, gateway, clock.now) == {"sent": 3}

    by_body = {m.body: m for m in fake.messages}
    assert len(by_body) == 3
    for message_id, out in zip(ids, rows(rt), strict=True):
        assert out.status == "sent" and out.attempts == 1 and out.lease_until is None
        assert out.sent_at == clock.now
        recorded = by_body[out.body]
        assert recorded.sid == out.provider_sid
        assert (recorded.to, recorded.from_) == (out.to_phone, HOTLINE)
        assert recorded.status_callback == "https://gridline.example.org/sms/status"
        [attempt] = attempts(rt, message_id)
        assert (attempt.outcome, attempt.ambiguous, attempt.at) == ("sent", False, clock.now)
    # Nothing is due any more: a second pass sends nothing.
    assert deliver(rt, gateway, clock.advance(hours=1)) == {}
    assert len(fake.messages) == 3


def test_enqueue_belongs_to_the_callers_transaction(
    rt: Runtime, clock: Clock, fake: FakeTwilio, gateway: TwilioGateway
) -> None:
    with pytest.raises(RuntimeError), unit_of_work(rt.sessions) as session:
        enqueue(session, to=phone(1), template="opted_in", params={}, locale="en", now=clock.now)
        raise RuntimeError("the state change failed")

    assert rows(rt) == []
    assert deliver(rt, gateway, clock.now) == {}
    assert fake.messages == []


def test_rows_are_not_sent_before_they_are_due(
    rt: Runtime, clock: Clock, fake: FakeTwilio, gateway: TwilioGateway
) -> None:
    add(rt, clock.now + timedelta(minutes=5), 1)

    assert deliver(rt, gateway, clock.now) == {}
    assert deliver(rt, gateway, clock.advance(minutes=5)) == {"sent": 1}
    assert len(fake.messages) == 1


# --- transient failures -----------------------------------------------------


def test_transient_failure_backs_off_then_retries(
    rt: Runtime, clock: Clock, fake: FakeTwilio, gateway: TwilioGateway
) -> None:
    [message_id] = add(rt, clock.now, 1)
    fake.fail_next(Status(500))
    t0 = clock.now

    assert deliver(rt, gateway, t0) == {"pending": 1}

    out = row(rt, message_id)
    assert (out.status, out.attempts, out.error_code) == ("pending", 1, "20500")
    assert out.provider_sid is None and out.lease_until is None
    # First step 10 s, jittered to between half of it and all of it.
    assert t0 + timedelta(seconds=5) <= out.next_attempt_at <= t0 + timedelta(seconds=10)
    [attempt] = attempts(rt, message_id)
    assert (attempt.outcome, attempt.error_code, attempt.ambiguous) == ("transient", "20500", False)
    assert fake.messages == []

    # Not before its time.
    assert deliver(rt, gateway, t0 + timedelta(seconds=4)) == {}
    assert len(fake.requests) == 1

    assert deliver(rt, gateway, out.next_attempt_at) == {"sent": 1}
    out = row(rt, message_id)
    assert (out.status, out.attempts, out.error_code, out.error_message) == ("sent", 2, None, None)
    assert [a.outcome for a in attempts(rt, message_id)] == ["transient", "sent"]
    assert [m.to for m in fake.messages] == [phone(1)]


def test_backoff_grows_and_is_capped_between_retries(
    rt: Runtime, clock: Clock, fake: FakeTwilio, gateway: TwilioGateway
) -> None:
    backoff = Backoff(base_seconds=10, cap_seconds=50, max_attempts=10)
    [message_id] = add(rt, clock.now, 1)
    fake.fail_next(Status(503), Status(429), Status(500), Status(503), Status(500))
    gaps: list[float] = []
    now = clock.now
    for _ in range(5):
        assert deliver(rt, gateway, now, backoff=backoff) == {"pending": 1}
        due = row(rt, message_id).next_attempt_at
        gaps.append((due - now).total_seconds())
        now = due

    assert deliver(rt, gateway, now, backoff=backoff) == {"sent": 1}
    steps = [10, 20, 40, 50, 50]  # doubling, then the cap
    for gap, step in zip(gaps, steps, strict=True):
        assert step / 2 <= gap <= step
    assert len(attempts(rt, message_id)) == 6
    assert len(fake.messages) == 1


def test_backoff_delay_is_exponential_jittered_and_bounded() -> None:
    backoff = Backoff(base_seconds=5, cap_seconds=3600, max_attempts=8)
    rng = random.Random(42)
    delays = [backoff.delay(n, rng=rng).total_seconds() for n in range(1, 13)]

    for n, delay in enumerate(delays, start=1):
        step = min(3600, 5 * 2 ** (n - 1))
        assert step / 2 <= delay <= step
    assert len(set(delays)) == len(delays)  # jittered, not a fixed schedule
    # Same seed, same schedule.
    again = random.Random(42)
    assert delays == [backoff.delay(n, rng=again).total_seconds() for n in range(1, 13)]
    # Attempt counts far past the limit (lost leases) neither overflow nor pass the cap.
    assert backoff.delay(100_000, rng=rng) <= timedelta(hours=1)
    with pytest.raises(ValueError):
        Backoff(base_seconds=10, cap_seconds=5)
    with pytest.raises(ValueError):
        Backoff(max_attempts=0)


def test_gives_up_after_max_attempts_with_a_reason(
    rt: Runtime, clock: Clock, fake: FakeTwilio, gateway: TwilioGateway
) -> None:
    backoff = Backoff(base_seconds=10, cap_seconds=300, max_attempts=3)
    [message_id] = add(rt, clock.now, 1)
    fake.fail_next(Status(500), times=10)
    now = clock.now
    results = []
    for _ in range(10):
        results.append(deliver(rt, gateway, now, backoff=backoff))
        out = row(rt, message_id)
        if out.status != "pending":
            break
        now = out.next_attempt_at

    assert results == [{"pending": 1}, {"pending": 1}, {"failed": 1}]
    out = row(rt, message_id)
    assert out.status == "failed" and out.attempts == 3
    assert out.error_code == "20500"
    assert out.error_message is not None
    assert out.error_message.startswith("gave up after 3 attempts")
    assert [a.outcome for a in attempts(rt, message_id)] == ["transient"] * 3
    # Never tried again.
    fake.clear_failures()
    assert deliver(rt, gateway, now + timedelta(days=1), backoff=backoff) == {}
    assert requests_to(fake, 1) == 3
    assert fake.messages == []


# --- permanent failures -----------------------------------------------------


def test_permanent_failure_is_failed_with_its_code_and_never_retried(
    rt: Runtime, clock: Clock, fake: FakeTwilio, gateway: TwilioGateway
) -> None:
    ok_id, bad_id = add(rt, clock.now, 1, 2)
    fake.reject_number(phone(2), 21610)

    assert deliver(rt, gateway, clock.now) == {"sent": 1, "failed": 1}

    bad = row(rt, bad_id)
    assert (bad.status, bad.error_code, bad.attempts) == ("failed", "21610", 1)
    assert bad.error_message is not None and "unsubscribed" in bad.error_message
    [attempt] = attempts(rt, bad_id)
    assert (attempt.outcome, attempt.error_code) == ("permanent", "21610")
    assert row(rt, ok_id).status == "sent"

    assert deliver(rt, gateway, clock.advance(days=2)) == {}
    assert requests_to(fake, 2) == 1
    assert [m.to for m in fake.messages] == [phone(1)]


def test_an_invalid_number_fails_at_once(
    rt: Runtime, clock: Clock, fake: FakeTwilio, gateway: TwilioGateway
) -> None:
    with unit_of_work(rt.sessions) as session:
        queued = enqueue(
            session, to="+86138", template="opted_in", params={}, locale="zh", now=clock.now
        )
    message_id = queued.id

    assert deliver(rt, gateway, clock.now) == {"failed": 1}
    out = row(rt, message_id)
    assert (out.status, out.error_code) == ("failed", "21211")
    assert fake.messages == []


# --- leases -----------------------------------------------------------------


class WorkerKilled(BaseException):
    """The process dies (SIGKILL, OOM): nothing after this line runs."""


class DyingGateway:
    """Hands the SMS to the real gateway (or not), then the worker dies."""

    name = "dying"

    def __init__(self, inner: TwilioGateway, *, after_send: bool) -> None:
        self.inner = inner
        self.after_send = after_send

    def send(self, sms: OutgoingSms) -> SendResult:
        if self.after_send:
            self.inner.send(sms)
        raise WorkerKilled

    def close(self) -> None:
        return None


@pytest.mark.parametrize("after_send", [True, False], ids=["died-after-send", "died-before"])
def test_a_killed_workers_lease_is_recovered_and_counted_ambiguous(
    rt: Runtime, clock: Clock, fake: FakeTwilio, gateway: TwilioGateway, after_send: bool
) -> None:
    [message_id] = add(rt, clock.now, 1)
    t0 = clock.now
    with pytest.raises(WorkerKilled):
        deliver(rt, DyingGateway(gateway, after_send=after_send), t0)

    out = row(rt, message_id)
    assert (out.status, out.attempts, out.lease_until) == ("sending", 1, t0 + LEASE)
    # Another worker leaves a live lease alone.
    assert deliver(rt, gateway, t0 + LEASE - timedelta(seconds=1)) == {}
    assert row(rt, message_id).status == "sending"

    assert deliver(rt, gateway, t0 + LEASE + timedelta(seconds=1)) == {"sent": 1}

    out = row(rt, message_id)
    assert (out.status, out.attempts) == ("sent", 2)
    history = attempts(rt, message_id)
    assert [(a.outcome, a.ambiguous) for a in history] == [("lost", True), ("sent", False)]
    # The SMS went out twice exactly when the dead worker had already sent it,
    # and that duplicate is the one the ambiguous attempt accounts for.
    assert len(fake.sent_to(phone(1))) == (2 if after_send else 1)
    assert out.provider_sid == fake.sent_to(phone(1))[-1].sid


def test_a_lease_that_keeps_getting_lost_ends_failed(
    rt: Runtime, clock: Clock, fake: FakeTwilio, gateway: TwilioGateway
) -> None:
    backoff = Backoff(base_seconds=10, cap_seconds=300, max_attempts=2)
    [message_id] = add(rt, clock.now, 1)
    now = clock.now
    for _ in range(2):
        with pytest.raises(WorkerKilled):
            deliver(rt, DyingGateway(gateway, after_send=False), now, backoff=backoff)
        now = now + LEASE + timedelta(seconds=1)

    assert deliver(rt, gateway, now, backoff=backoff) == {"failed": 1}

    out = row(rt, message_id)
    assert (out.status, out.error_code) == ("failed", "lease_lost")
    assert out.error_message is not None and out.error_message.startswith("gave up after 2")
    assert [a.outcome for a in attempts(rt, message_id)] == ["lost", "lost"]
    assert fake.requests == []


class TakenOverGateway:
    """A gateway call so slow that the lease expires and another worker takes
    the row over; then this call goes through as well."""

    name = "slow"

    def __init__(self, rt: Runtime, inner: TwilioGateway, *, later: datetime) -> None:
        self.rt, self.inner, self.later = rt, inner, later
        self.other_worker: dict[str, int] | None = None

    def send(self, sms: OutgoingSms) -> SendResult:
        if self.other_worker is None:
            self.other_worker = deliver(self.rt, self.inner, self.later)
        return self.inner.send(sms)

    def close(self) -> None:
        return None


def test_an_outcome_after_the_lease_was_taken_over_does_not_overwrite(
    rt: Runtime, clock: Clock, fake: FakeTwilio, gateway: TwilioGateway
) -> None:
    [message_id] = add(rt, clock.now, 1)
    slow = TakenOverGateway(rt, gateway, later=clock.now + LEASE + timedelta(seconds=1))

    assert deliver(rt, slow, clock.now) == {"stale": 1}

    assert slow.other_worker == {"sent": 1}
    out = row(rt, message_id)
    first, second = fake.sent_to(phone(1))
    assert (out.status, out.attempts, out.provider_sid) == ("sent", 2, first.sid)
    assert second.sid != first.sid
    assert [(a.outcome, a.ambiguous) for a in attempts(rt, message_id)] == [
        ("lost", True),
        ("sent", False),
        ("sent", False),
    ]


# --- order and once-per-pass ------------------------------------------------


def test_urgent_rows_go_first(
    rt: Runtime, clock: Clock, fake: FakeTwilio, gateway: TwilioGateway
) -> None:
    add(rt, clock.now, 1, 2)
    add(rt, clock.now, 3, 4, priority=PRIORITY_URGENT)

    assert deliver(rt, gateway, clock.now, limit=1) == {"sent": 1}
    assert [m.to for m in fake.messages] == [phone(3)]

    assert deliver(rt, gateway, clock.now) == {"sent": 3}
    assert [m.to for m in fake.messages] == [phone(3), phone(4), phone(1), phone(2)]


def test_a_row_is_sent_at_most_once_per_pass(
    rt: Runtime, clock: Clock, fake: FakeTwilio, gateway: TwilioGateway
) -> None:
    # A zero backoff makes a failed row due again at once, within the same pass.
    no_wait = Backoff(base_seconds=0, cap_seconds=0, max_attempts=5)
    add(rt, clock.now, 1, 2, 3)
    fake.fail_next(Status(500), Status(500), Status(500))

    assert deliver(rt, gateway, clock.now, backoff=no_wait) == {"pending": 3}
    assert Counter(r.to for r in fake.requests) == {phone(1): 1, phone(2): 1, phone(3): 1}

    assert deliver(rt, gateway, clock.now, backoff=no_wait) == {"sent": 3}
    assert sorted(m.to for m in fake.messages) == [phone(1), phone(2), phone(3)]


class SlowGateway:
    """Each send takes `seconds` of (fake) monotonic time."""

    name = "slow"

    def __init__(self, inner: TwilioGateway, ticks: list[float], seconds: float) -> None:
        self.inner, self.ticks, self.seconds = inner, ticks, seconds

    def send(self, sms: OutgoingSms) -> SendResult:
        self.ticks[0] += self.seconds
        return self.inner.send(sms)

    def close(self) -> None:
        return None


def test_a_slow_pass_stops_leasing_before_its_leases_could_expire(
    rt: Runtime,
    clock: Clock,
    fake: FakeTwilio,
    gateway: TwilioGateway,
) -> None:
    # Leases are stamped from the pass's `now`; a pass whose sends each take 40 s
    # of real time must stop within half the 2-minute lease.
    ticks = [1000.0]

    def timer() -> float:
        return ticks[0]

    add(rt, clock.now, 1, 2, 3, 4)

    assert deliver(rt, SlowGateway(gateway, ticks, 40), clock.now, timer=timer) == {"sent": 2}
    assert [r.status for r in rows(rt)] == ["sent", "sent", "pending", "pending"]
    # Even a single send longer than the budget goes: each pass makes progress.
    slower = SlowGateway(gateway, ticks, 500)
    assert deliver(rt, slower, clock.now, timer=timer) == {"sent": 1}
    assert deliver(rt, gateway, clock.now) == {"sent": 1}
    assert len(fake.messages) == 4


def test_timeout_is_an_ambiguous_transient_attempt(
    rt: Runtime, clock: Clock, fake: FakeTwilio
) -> None:
    impatient = twilio_gateway(fake, timeout=0.25)
    [message_id] = add(rt, clock.now, 1)
    fake.fail_next(Hang(accept=True))
    try:
        assert deliver(rt, impatient, clock.now) == {"pending": 1}
        fake.release_hung()
        assert deliver(rt, impatient, row(rt, message_id).next_attempt_at) == {"sent": 1}
    finally:
        fake.release_hung()
        impatient.close()

    assert [(a.outcome, a.error_code, a.ambiguous) for a in attempts(rt, message_id)] == [
        ("transient", "timeout", True),
        ("sent", None, False),
    ]
    # The gateway had accepted the first try: one duplicate, and it is on record.
    assert len(fake.sent_to(phone(1))) == 2


class BrokenGateway:
    name = "broken"

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def send(self, sms: OutgoingSms) -> SendResult:
        raise self.exc

    def close(self) -> None:
        return None


def test_a_gateway_bug_or_odd_error_keeps_the_row(rt: Runtime, clock: Clock) -> None:
    first, second = add(rt, clock.now, 1, 2)

    assert deliver(rt, BrokenGateway(KeyError("boom")), clock.now, limit=1) == {"pending": 1}
    out = row(rt, first)
    assert (out.status, out.error_code) == ("pending", "internal")
    assert attempts(rt, first)[0].ambiguous

    # A code longer than the column must not make the database refuse the outcome.
    long_code = TransientSendError("odd gateway", code="E" * 40)
    assert deliver(rt, BrokenGateway(long_code), clock.now) == {"pending": 1}
    out = row(rt, second)
    assert out.status == "pending" and out.error_code == "E" * 16


def test_concurrent_workers_send_each_row_once(rt: Runtime, clock: Clock, fake: FakeTwilio) -> None:
    # Four workers (own gateway and connections each) on one database, started together.
    add(rt, clock.now, *range(1, 41))
    add(rt, clock.now, *range(41, 51), priority=PRIORITY_URGENT)
    start = threading.Barrier(4)
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        gw = twilio_gateway(fake)
        try:
            start.wait()
            results.append(deliver(rt, gw, clock.now, limit=100))
        except BaseException as exc:
            errors.append(exc)
        finally:
            gw.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(r.get("sent", 0) for r in results) == 50
    assert {r.status for r in rows(rt)} == {"sent"}
    assert Counter(m.to for m in fake.messages) == {phone(n): 1 for n in range(1, 51)}
    assert len(fake.requests) == 50
    assert sum(len(attempts(rt, r.id)) for r in rows(rt)) == 50


# --- soak -------------------------------------------------------------------


def test_every_row_ends_sent_or_failed_under_a_flaky_gateway(
    rt: Runtime, clock: Clock, fake: FakeTwilio, gateway: TwilioGateway
) -> None:
    backoff = Backoff(base_seconds=5, cap_seconds=120, max_attempts=8)
    add(rt, clock.now, *range(1, 31))
    add(rt, clock.now, *range(31, 41), priority=PRIORITY_URGENT)
    fake.reject_number(phone(7), 21610)
    fake.reject_number(phone(33), 21211)
    # 30 % of creates fail: 500, 503, 429, or accepted then the connection drops
    # (an ambiguous attempt that may duplicate the SMS).
    fake.fail_ratio(0.3, seed=20261125)
    rng = random.Random(7)

    now = clock.now
    for _ in range(60):
        deliver(rt, gateway, now, backoff=backoff, rng=rng, limit=15)
        open_rows = [r for r in rows(rt) if r.status in ("pending", "sending")]
        if not open_rows:
            break
        now = max(now, min(r.next_attempt_at for r in open_rows))

    final = rows(rt)
    assert {r.status for r in final} <= {"sent", "failed"}
    failed = {r.to_phone: r for r in final if r.status == "failed"}
    assert set(failed) >= {phone(7), phone(33)}
    assert all(r.error_code and r.error_message for r in failed.values())

    recorded = Counter(m.body for m in fake.messages)
    sids = {m.sid for m in fake.messages}
    ambiguous_total = retried = 0
    for out in final:
        history = attempts(rt, out.id)
        assert len(history) == out.attempts
        ambiguous = sum(a.ambiguous for a in history)
        ambiguous_total += ambiguous
        retried += out.attempts > 1
        # Exactly once, plus one copy per ambiguous attempt (the gateway took it,
        # the answer was lost); a failed row was never accepted otherwise.
        assert recorded[out.body] == (out.status == "sent") + ambiguous, out.to_phone
        if out.status == "sent":
            assert out.provider_sid in sids
    # Every attempt is one request to the gateway, and the other way round.
    assert len(fake.requests) == sum(r.attempts for r in final)
    # The run really exercised retries and ambiguous duplicates.
    assert retried >= 5
    assert ambiguous_total >= 1


# --- status callbacks -------------------------------------------------------


def test_delivery_status_is_monotonic(
    rt: Runtime, clock: Clock, fake: FakeTwilio, gateway: TwilioGateway
) -> None:
    first, second, third = add(rt, clock.now, 1, 2, 3)
    deliver(rt, gateway, clock.now)
    sid = {i: row(rt, i).provider_sid or "" for i in (first, second, third)}

    def callback(message_id: int, status: str, error_code: str | None = None) -> bool:
        with unit_of_work(rt.sessions) as session:
            return record_delivery_status(
                session,
                provider_sid=sid[message_id],
                status=status,
                error_code=error_code,
                now=clock.now,
            )

    def delivery(message_id: int) -> tuple[str | None, str | None]:
        out = row(rt, message_id)
        return out.delivery_status, out.error_code

    assert callback(first, "queued")
    assert callback(first, "sent")
    assert callback(first, "DELIVERED")
    assert callback(first, "sent")  # late
    assert callback(first, "queued")  # later still
    assert callback(first, "partially_delivered")  # unknown: ignored
    assert delivery(first) == ("delivered", None)
    assert callback(first, "read")
    assert callback(first, "delivered")
    assert delivery(first) == ("read", None)

    assert callback(second, "undelivered", "30003")
    assert callback(second, "sent")
    assert callback(second, "delivered")
    assert delivery(second) == ("undelivered", "30003")

    assert callback(third, "delivered")  # arrives before "sent"
    assert callback(third, "sent")
    assert callback(third, "failed", "30005")
    assert delivery(third) == ("delivered", None)

    # The outbox status is ours: handed to the gateway, whatever happened after.
    assert {row(rt, i).status for i in (first, second, third)} == {"sent"}

    with unit_of_work(rt.sessions) as session:
        assert not record_delivery_status(
            session,
            provider_sid="SM" + "0" * 32,
            status="delivered",
            error_code=None,
            now=clock.now,
        )


def test_status_callback_before_the_sid_is_recorded_is_applied_later(
    rt: Runtime, clock: Clock, fake: FakeTwilio, gateway: TwilioGateway
) -> None:
    """The gateway may call back before the worker commits the SID it returned."""
    (message_id,) = add(rt, clock.now, 1)

    class EarlyCallbackGateway:
        name = "early"

        def send(self, sms: OutgoingSms) -> SendResult:
            result = gateway.send(sms)
            # The callback arrives while the worker still holds the result.
            with unit_of_work(rt.sessions) as session:
                known = record_delivery_status(
                    session,
                    provider_sid=result.provider_sid,
                    status="undelivered",
                    error_code="30003",
                    now=clock.now,
                )
            assert known is False
            return result

        def close(self) -> None:
            return None

    deliver(rt, EarlyCallbackGateway(), clock.now)
    out = row(rt, message_id)
    assert out.status == "sent"
    assert (out.delivery_status, out.error_code) == ("undelivered", "30003")
    with rt.sessions() as session:
        report = session.scalar(select(DeliveryReport))
        assert report is not None and report.outbound_id == message_id
