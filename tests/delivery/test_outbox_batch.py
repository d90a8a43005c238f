"""The outbox sends in batches: leased together, sent concurrently (twilio), recorded
together; on SQLite and PostgreSQL. Nothing sleeps: overlap is shown by the fake
Twilio server holding requests until the test releases them.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from app.db import unit_of_work
from app.models.messages import DeliveryAttempt, OutboundMessage, SenderRate
from app.runtime import Runtime
from routing.delivery import PRIORITY_BULK, PRIORITY_URGENT, RateLimit
from sms.twilio_gateway import TwilioGateway
from tests.conftest import Clock
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Hang
from tests.helpers import RecordingGateway
from tests.outbox_support import HOTLINE, PhoneBlock, deliver, rows

_block = PhoneBlock("200")
phone = _block.phone
add = _block.add


def attempt_count(rt: Runtime) -> Counter[int]:
    with rt.sessions() as session:
        return Counter(session.scalars(select(DeliveryAttempt.outbound_id)))


@pytest.fixture
def twilio(fake_twilio: FakeTwilio) -> Iterator[TwilioGateway]:
    gateway = TwilioGateway(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_number=HOTLINE,
        api_base=fake_twilio.base_url,
        timeout=10,
    )
    yield gateway
    gateway.close()


class Tally:
    """Transactions (commits) and statements on an engine, while active."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.commits = 0
        self.statements = 0

    def _commit(self, _conn: object) -> None:
        self.commits += 1

    def _statement(self, *_args: object) -> None:
        self.statements += 1

    def __enter__(self) -> Tally:
        event.listen(self.rt.engine, "commit", self._commit)
        event.listen(self.rt.engine, "before_cursor_execute", self._statement)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.rt.engine, "commit", self._commit)
        event.remove(self.rt.engine, "before_cursor_execute", self._statement)


# --- transactions ------------------------------------------------------------


def test_a_batch_is_leased_and_recorded_in_two_transactions(rt: Runtime, clock: Clock) -> None:
    add(rt, clock.now, *range(20))
    gateway = RecordingGateway()

    with Tally(rt) as tally:
        assert deliver(rt, gateway, clock.now, batch=20) == {"sent": 20}

    # Lease the 20, record the 20, and one more lease that finds nothing due.
    assert tally.commits == 3
    # Statements do not grow with the rows (one by one it was ~6 per SMS).
    assert tally.statements < 20
    assert {r.status for r in rows(rt)} == {"sent"}
    assert sorted(s.reference for s in gateway.sent) == sorted(str(r.id) for r in rows(rt))
    assert attempt_count(rt) == {r.id: 1 for r in rows(rt)}


def test_a_batch_short_of_its_size_ends_the_pass(rt: Runtime, clock: Clock) -> None:
    """Fewer rows due than a batch holds: nothing else is, so no second lease
    looks; the pass says it drained the outbox (the sender then waits)."""
    add(rt, clock.now, *range(3))
    drained: list[bool] = []
    with Tally(rt) as tally:
        sent = deliver(
            rt, RecordingGateway(), clock.now, batch=20, drained=lambda: drained.append(True)
        )
    assert sent == {"sent": 3} and drained == [True]
    assert tally.commits == 2  # the lease and the record


def test_a_pass_cut_at_its_limit_has_not_drained(rt: Runtime, clock: Clock) -> None:
    add(rt, clock.now, *range(6))
    gateway = RecordingGateway()
    drained: list[bool] = []
    note = lambda: drained.append(True)  # noqa: E731
    assert deliver(rt, gateway, clock.now, batch=5, limit=5, drained=note) == {"sent": 5}
    assert drained == []
    assert deliver(rt, gateway, clock.now, batch=5, drained=note) == {"sent": 1}
    assert drained == [True]


def test_the_statements_of_a_batch_do_not_grow_with_its_size(rt: Runtime, clock: Clock) -> None:
    gateway = RecordingGateway()
    counted: list[int] = []
    for size in (3, 15):
        add(rt, clock.now, *range(100 * size, 100 * size + size))
        with Tally(rt) as tally:
            assert deliver(rt, gateway, clock.now, batch=20) == {"sent": size}
        counted.append(tally.statements)
    assert counted[0] == counted[1]


def test_batches_follow_the_limit_and_take_turns(rt: Runtime, clock: Clock) -> None:
    add(rt, clock.now, *range(12))
    gateway = RecordingGateway()
    with Tally(rt) as tally:
        assert deliver(rt, gateway, clock.now, batch=5, limit=12) == {"sent": 12}
    # Batches of 5, 5 and 2 (the limit): a lease and a record transaction each.
    assert tally.commits == 6
    assert [s.reference for s in gateway.sent] == [str(r.id) for r in rows(rt)]


# --- concurrency ---------------------------------------------------------------


def test_twilio_sends_of_a_batch_overlap_and_each_goes_once(
    rt: Runtime, clock: Clock, fake_twilio: FakeTwilio, twilio: TwilioGateway
) -> None:
    ids = add(rt, clock.now, *range(12))
    # The first four creates are held until released: four at once in flight.
    fake_twilio.fail_next(Hang(accept=True), times=4)
    result: dict[str, int] = {}
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.update(deliver(rt, twilio, clock.now, batch=12, concurrency=4))
        except BaseException as exc:
            errors.append(exc)

    sender = threading.Thread(target=run)
    sender.start()
    try:
        fake_twilio.wait_hanging(4)
        # No more than `concurrency` are in flight: the fifth waits its turn.
        assert len(fake_twilio.requests) == 4
        # The batch was leased in its own (committed) transaction, and the sends
        # hold none: another writer gets through while they are in flight.
        assert {r.status for r in rows(rt)} == {"sending"}
        add(rt, clock.now + timedelta(hours=1), 99)
    finally:
        fake_twilio.release_hung()
        sender.join(30)

    assert not sender.is_alive() and errors == []
    assert result == {"sent": 12}
    assert Counter(m.to for m in fake_twilio.messages) == {phone(n): 1 for n in range(12)}
    assert len(fake_twilio.requests) == 12
    sids = {m.to: m.sid for m in fake_twilio.messages}
    for out in rows(rt):
        if out.id in ids:
            # Each row has the SID of its own message: no answer crossed threads.
            assert out.status == "sent" and out.provider_sid == sids[out.to_phone]
    assert attempt_count(rt) == {message_id: 1 for message_id in ids}


def test_a_sequential_gateway_keeps_the_batch_order(rt: Runtime, clock: Clock) -> None:
    add(rt, clock.now, *range(10))
    gateway = RecordingGateway()  # no `concurrent`: one at a time, in order
    assert deliver(rt, gateway, clock.now, batch=10, concurrency=8) == {"sent": 10}
    assert [s.to for s in gateway.sent] == [phone(n) for n in range(10)]


# --- the rate ------------------------------------------------------------------


def bucket(rt: Runtime) -> SenderRate:
    with rt.sessions() as session:
        found = session.scalar(select(SenderRate))
        assert found is not None
        return found


def test_a_batch_leases_no_more_than_the_rate_allows(rt: Runtime, clock: Clock) -> None:
    add(rt, clock.now, *range(10))
    rate = RateLimit(sender=HOTLINE, per_second=4)  # burst 4, one every 250 ms
    gateway = RecordingGateway()
    start = clock.now

    assert deliver(rt, gateway, start, rate=rate, batch=20) == {"sent": 4, "throttled": 1}
    assert bucket(rt).tat.replace(tzinfo=None) == (start + 4 * rate.interval).replace(tzinfo=None)
    assert [r.status for r in rows(rt)].count("pending") == 6

    # Half a second later two tokens are back: two leave, and `tat` moves two on.
    later = clock.advance(seconds=0.5)
    assert deliver(rt, gateway, later, rate=rate, batch=20) == {"sent": 2, "throttled": 1}
    assert bucket(rt).tat.replace(tzinfo=None) == (start + 6 * rate.interval).replace(tzinfo=None)
    assert len(gateway.sent) == 6


# --- priorities ----------------------------------------------------------------


def test_priorities_order_a_batch(rt: Runtime, clock: Clock) -> None:
    [bulk] = add(rt, clock.now, 1, priority=PRIORITY_BULK)
    [normal, lost] = add(rt, clock.now, 2, 3)
    [urgent] = add(rt, clock.now, 4, priority=PRIORITY_URGENT)
    with unit_of_work(rt.sessions) as session:  # a worker died holding `lost`
        row = session.get(OutboundMessage, lost)
        assert row is not None
        row.status, row.attempts, row.lease_until = "sending", 1, clock.now
    gateway = RecordingGateway()

    # A batch of two takes the most urgent two: the urgent row, then the expired
    # lease (it goes before pending rows of its own priority).
    assert deliver(rt, gateway, clock.advance(seconds=1), batch=2, limit=2) == {"sent": 2}
    assert [s.reference for s in gateway.sent] == [str(urgent), str(lost)]
    assert deliver(rt, gateway, clock.now, batch=20) == {"sent": 2}
    assert [s.reference for s in gateway.sent] == [str(i) for i in (urgent, lost, normal, bulk)]


# --- giving leases back --------------------------------------------------------


def test_rows_whose_turn_comes_after_half_the_lease_are_given_back(
    rt: Runtime, clock: Clock
) -> None:
    ticks = [1000.0]
    ids = add(rt, clock.now, *range(4))
    inner = RecordingGateway()

    class Slow:
        name = "slow"

        def send(self, sms):  # type: ignore[no-untyped-def]
            ticks[0] += 50  # 50 s each: the third would start past 60 s
            return inner.send(sms)

        def close(self) -> None:
            return None

    assert deliver(rt, Slow(), clock.now, batch=4, timer=lambda: ticks[0]) == {"sent": 2}
    out = rows(rt)
    assert [r.status for r in out] == ["sent", "sent", "pending", "pending"]
    # Given back as if never leased: no attempt counted, none recorded.
    assert [r.attempts for r in out] == [1, 1, 0, 0]
    assert [r.lease_until for r in out[2:]] == [None, None]
    assert attempt_count(rt) == {ids[0]: 1, ids[1]: 1}
    assert deliver(rt, inner, clock.now) == {"sent": 2}


def test_outcomes_are_recorded_one_by_one_when_the_batch_cannot_be(
    rt: Runtime, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.delivery.outbox as outbox

    ids = add(rt, clock.now, *range(3))
    real = outbox._record_batch
    calls = [0]

    def failing_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("the batch's transaction failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(outbox, "_record_batch", failing_once)
    gateway = RecordingGateway()
    assert deliver(rt, gateway, clock.now, batch=3) == {"sent": 3}
    assert {r.status for r in rows(rt)} == {"sent"}
    assert attempt_count(rt) == {message_id: 1 for message_id in ids}
    assert len(gateway.sent) == 3
