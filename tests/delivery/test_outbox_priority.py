"""Outbox priority and the per-sender rate (issue #6, point 3), on SQLite and PostgreSQL.

Deterministic: rows are leased in a known order, and time only moves with `clock`.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import event, insert, select, text

from app.db import unit_of_work
from app.delivery.outbox import deliver_due, enqueue
from app.models.messages import OutboundMessage, SenderRate
from app.runtime import Runtime
from app.worker.loop import run_once
from routing.delivery import (
    PRIORITY_BULK,
    PRIORITY_NORMAL,
    PRIORITY_URGENT,
    RateLimit,
    priority_for,
)
from tests.conftest import Clock, make_settings
from tests.factories import RESIDENT, WORKER_A, make_city
from tests.helpers import RecordingGateway, new_sid
from tests.outbox_support import BACKOFF, HOTLINE, LEASE, PhoneBlock

phone = PhoneBlock("100").phone


def bulk_backlog(rt: Runtime, now: datetime, count: int) -> None:
    """A broadcast: `count` bulk rows, inserted in one statement like a bulk job would."""
    rows = [
        {
            "to_phone": phone(n),
            "template": "opted_in",
            "params": {},
            "locale": "zh",
            "body": f"broadcast {n}",
            "priority": PRIORITY_BULK,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(count)
    ]
    with unit_of_work(rt.sessions) as session:
        session.execute(insert(OutboundMessage), rows)


def add(rt: Runtime, now: datetime, to: str, *, priority: int, not_before=None) -> int:
    with unit_of_work(rt.sessions) as session:
        row = enqueue(
            session,
            to=to,
            template="relay_resident",
            params={"code": "1234", "team": "DH-01", "text": f"to {to}"},
            locale="zh",
            now=now,
            priority=priority,
            not_before=not_before,
        )
    return row.id


def deliver(rt: Runtime, gateway: object, now: datetime, **kwargs: object) -> dict[str, int]:
    return deliver_due(rt.sessions, gateway, now=now, backoff=BACKOFF, lease=LEASE, **kwargs)  # type: ignore[arg-type]


# --- priority ----------------------------------------------------------------


def test_an_urgent_row_behind_a_bulk_backlog_is_leased_first(rt, clock: Clock) -> None:
    bulk_backlog(rt, clock.now, 3000)
    add(rt, clock.now, phone(90001), priority=PRIORITY_NORMAL)
    urgent = add(rt, clock.advance(seconds=1), WORKER_A, priority=PRIORITY_URGENT)
    gateway = RecordingGateway()
    assert deliver(rt, gateway, clock.now, limit=1) == {"sent": 1}
    assert [s.to for s in gateway.sent] == [WORKER_A]
    with rt.sessions() as s:
        assert s.get(OutboundMessage, urgent).status == "sent"
    # Then normal traffic, then the broadcast in its own order.
    deliver(rt, gateway, clock.now, limit=3)
    assert [s.to for s in gateway.sent] == [WORKER_A, phone(90001), phone(0), phone(1)]


def test_within_a_priority_the_earliest_due_goes_first(rt, clock: Clock) -> None:
    start = clock.now
    held = add(
        rt, start, phone(1), priority=PRIORITY_NORMAL, not_before=start + timedelta(seconds=30)
    )
    early = add(rt, clock.advance(seconds=5), phone(2), priority=PRIORITY_NORMAL)
    gateway = RecordingGateway()
    deliver(rt, gateway, clock.advance(seconds=60))
    # `held` has the lower id but fell due later.
    assert [s.reference for s in gateway.sent] == [str(early), str(held)]


def test_an_expired_lease_waits_behind_more_urgent_pending_rows(rt, clock: Clock) -> None:
    bulk = add(rt, clock.now, phone(1), priority=PRIORITY_BULK)
    with unit_of_work(rt.sessions) as session:  # a worker died holding the bulk row
        row = session.get(OutboundMessage, bulk)
        row.status, row.attempts, row.lease_until = "sending", 1, clock.now
    urgent = add(rt, clock.now, phone(2), priority=PRIORITY_URGENT)
    gateway = RecordingGateway()
    deliver(rt, gateway, clock.advance(seconds=1))
    assert [s.reference for s in gateway.sent] == [str(urgent), str(bulk)]


def test_the_lease_query_reads_the_queue_index_without_sorting(rt, clock: Clock) -> None:
    bulk_backlog(rt, clock.now, 200)
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if "FROM outbound_messages" in statement:
            statements.append((statement, parameters))

    event.listen(rt.engine, "before_cursor_execute", capture)
    try:
        deliver(rt, RecordingGateway(), clock.now, limit=1)
    finally:
        event.remove(rt.engine, "before_cursor_execute", capture)
    pending_query = next((sql, params) for sql, params in statements if "next_attempt_at <=" in sql)
    with rt.engine.connect() as conn:
        if rt.engine.dialect.name == "sqlite":
            plan = " ".join(
                str(r[-1])
                for r in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + pending_query[0], pending_query[1]
                )
            )
            assert "ix_outbound_messages_queue" in plan
            assert "TEMP B-TREE" not in plan  # no sort of the backlog
        else:
            conn.execute(text("SET enable_seqscan = off"))  # tiny tables: force the choice
            plan = " ".join(
                r[0] for r in conn.exec_driver_sql("EXPLAIN " + pending_query[0], pending_query[1])
            )
            assert "ix_outbound_messages_queue" in plan
            assert "Sort" not in plan


def test_priority_bands_of_templates() -> None:
    assert priority_for("forward", case_priority="urgent") == PRIORITY_URGENT
    assert priority_for("escalated_notice", case_priority="normal") == PRIORITY_URGENT
    assert priority_for("claim_overdue", case_priority="normal") == PRIORITY_URGENT
    assert priority_for("forward", case_priority="normal") == PRIORITY_NORMAL
    assert priority_for("help_resident", case_priority=None) == PRIORITY_NORMAL
    assert priority_for("overdue_digest", case_priority=None) == PRIORITY_BULK
    assert PRIORITY_URGENT > PRIORITY_NORMAL > PRIORITY_BULK


def test_a_new_urgent_case_is_forwarded_before_a_broadcast_backlog(rt, clock: Clock) -> None:
    with unit_of_work(rt.sessions) as session:
        make_city(session)
    bulk_backlog(rt, clock.now, 2000)
    from app.intake.store import InboundSms, store

    with unit_of_work(rt.sessions) as session:
        store(
            session,
            InboundSms(
                message_sid=new_sid(),
                from_phone=RESIDENT,
                to_phone=None,
                body="着火了，3幢楼道冒烟",
                params={},
                received_at=clock.now,
            ),
        )
    gateway = RecordingGateway()
    run_once(rt, gateway, now=clock.now)
    # The worker processed the message, then leased the urgent forward first.
    assert gateway.sent[0].to == WORKER_A
    assert "着火" in gateway.sent[0].body
    assert gateway.sent[1].to == RESIDENT  # the ack: urgent case, urgent band


def test_a_pass_yields_to_new_inbound_after_one_batch(rt, clock: Clock) -> None:
    bulk_backlog(rt, clock.now, 10)
    gateway = RecordingGateway()
    # Asked to yield from the start, it still sends a batch: steady inbound
    # wakes the worker all the time, and the outbox must not fall behind.
    assert deliver(rt, gateway, clock.now, batch=3, should_yield=lambda: True) == {"sent": 3}
    assert deliver(rt, gateway, clock.now, batch=3, should_yield=lambda: False) == {"sent": 7}


def test_a_pass_sends_on_for_yield_after_seconds_before_it_yields(rt, clock: Clock) -> None:
    bulk_backlog(rt, clock.now, 10)
    gateway = RecordingGateway()
    assert deliver(
        rt, gateway, clock.now, batch=3, should_yield=lambda: True, yield_after=3600
    ) == {"sent": 10}


# --- the per-sender rate -----------------------------------------------------------


def test_the_rate_releases_one_seconds_worth_per_second(rt, clock: Clock) -> None:
    bulk_backlog(rt, clock.now, 20)
    rate = RateLimit(sender=HOTLINE, per_second=5)
    gateway = RecordingGateway()
    assert deliver(rt, gateway, clock.now, rate=rate) == {"sent": 5, "throttled": 1}
    assert deliver(rt, gateway, clock.now, rate=rate) == {"throttled": 1}
    assert deliver(rt, gateway, clock.advance(seconds=1), rate=rate) == {"sent": 5, "throttled": 1}
    assert deliver(rt, gateway, clock.advance(seconds=0.2), rate=rate) == {
        "sent": 1,
        "throttled": 1,
    }
    assert len(gateway.sent) == 11


def test_the_rate_is_shared_by_workers_with_their_own_engines(rt, clock: Clock, settings) -> None:
    bulk_backlog(rt, clock.now, 40)
    rate = RateLimit(sender=HOTLINE, per_second=5)
    others = [Runtime.build(settings, clock=clock) for _ in range(3)]
    gateway = RecordingGateway()
    lock = threading.Lock()

    class Shared:
        name = "shared"

        def send(self, sms):
            with lock:
                return gateway.send(sms)

    barrier = threading.Barrier(len(others))
    errors: list[BaseException] = []

    def work(worker_rt: Runtime) -> None:
        try:
            barrier.wait()
            deliver_due(
                worker_rt.sessions, Shared(), now=clock.now, backoff=BACKOFF, lease=LEASE, rate=rate
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(o,)) for o in others]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for o in others:
            o.close()
    assert not errors
    assert len(gateway.sent) == 5  # one bucket in the database, not one per worker
    assert len({s.reference for s in gateway.sent}) == 5


def test_an_urgent_row_takes_the_next_token(rt, clock: Clock) -> None:
    bulk_backlog(rt, clock.now, 20)
    rate = RateLimit(sender=HOTLINE, per_second=2)
    gateway = RecordingGateway()
    deliver(rt, gateway, clock.now, rate=rate)
    urgent = add(rt, clock.now, WORKER_A, priority=PRIORITY_URGENT)
    assert deliver(rt, gateway, clock.now, rate=rate) == {"throttled": 1}
    assert deliver(rt, gateway, clock.advance(seconds=0.5), rate=rate) == {
        "sent": 1,
        "throttled": 1,
    }
    assert gateway.sent[-1].reference == str(urgent)


def test_the_worker_applies_the_rate_setting(db_url, clock: Clock) -> None:
    # A generous pass time: the wall-clock cap of a send pass must not end it first
    # on a slow machine (the clock fixture drives the rate, not the wall clock).
    settings = make_settings(db_url, sender_rate_per_s=3, outbox_pass_seconds=60)
    rt = Runtime.build(settings, clock=clock)
    try:
        bulk_backlog(rt, clock.now, 10)
        gateway = RecordingGateway()
        first = run_once(rt, gateway)
        assert first.sent == {"sent": 3, "throttled": 1}
        assert not first.more  # throttled: the worker waits instead of spinning
        clock.advance(seconds=1)
        assert run_once(rt, gateway).sent == {"sent": 3, "throttled": 1}
        with rt.sessions() as s:
            bucket = s.scalar(select(SenderRate))
            assert bucket.sender == HOTLINE
    finally:
        rt.close()
