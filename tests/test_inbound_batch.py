"""Inbound messages processed in batches, one transaction each (app/worker/loop.py):
the outcome of every message is what it would be processed on its own."""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app import memo
from app.cases.changes import Ctx
from app.db import unit_of_work
from app.inbound import messages as inbound
from app.inbound.messages import store_inbound
from app.models.cases import Case, CaseEvent, CaseParticipant
from app.models.deadlines import ScheduledStep
from app.models.directory import Region
from app.models.messages import InboundMessage, OutboundMessage
from app.runtime import Runtime
from app.sqlite_lock import lock_for, polite_writer
from app.worker import loop as worker
from app.worker.loop import process_batch, process_inbound, process_one
from tests.conftest import Clock, _truncate_all, make_settings
from tests.factories import WORKER_A, make_city, make_resident
from tests.helpers import Scripted, new_sid


def make_rt(db_url: str, clock: Clock, **overrides: object) -> Runtime:
    # A generous time bound unless a test is about it: a slow machine must not split a batch.
    values: dict[str, object] = {"inbound_tx_seconds": 60.0, **overrides}
    return Runtime.build(make_settings(db_url, **values), clock=clock)


@pytest.fixture
def brt(db_url: str, clock: Clock) -> Iterator[Runtime]:
    runtime = make_rt(db_url, clock)
    with unit_of_work(runtime.sessions) as session:
        make_city(session)
    try:
        yield runtime
    finally:
        runtime.close()


def text_in(rt: Runtime, sender: str, body: str) -> int:
    with unit_of_work(rt.sessions) as session:
        store_inbound(
            session,
            message_sid=new_sid(),
            from_phone=sender,
            to_phone=None,
            body=body,
            params={},
            now=rt.clock(),
        )
        found = session.scalar(select(func.max(InboundMessage.id)))
        assert found is not None
        return int(found)


def outcome(rt: Runtime, message_id: int) -> dict[str, Any]:
    """What a message did, without what differs by chance (ids, codes, phones)."""
    with rt.sessions() as s:
        message = s.get(InboundMessage, message_id)
        assert message is not None
        sender = message.from_phone

        def who(phone: str) -> str:
            return "sender" if phone == sender else phone

        sent = s.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.inbound_id == message_id)
            .order_by(OutboundMessage.id)
        ).all()
        result: dict[str, Any] = {
            "status": message.status,
            "sent": [(who(o.to_phone), o.template, sorted(o.params)) for o in sent],
        }
        case = s.get(Case, message.case_id) if message.case_id else None
        if case is not None:
            grid = s.get(Region, case.grid_id) if case.grid_id else None
            result["case"] = {
                "status": case.status,
                "level": case.level,
                "method": case.routing_method,
                "grid": grid.code if grid else None,
                "claimed_by": who(case.claimed_by) if case.claimed_by else None,
                "events": s.scalars(
                    select(CaseEvent.kind)
                    .where(CaseEvent.case_id == case.id)
                    .order_by(CaseEvent.id)
                ).all(),
                "participants": sorted(
                    (who(p.phone), p.reason, p.level)
                    for p in s.scalars(
                        select(CaseParticipant).where(CaseParticipant.case_id == case.id)
                    )
                ),
                "steps": sorted(
                    (st.kind, st.due_at.isoformat(), st.outcome)
                    for st in s.scalars(
                        select(ScheduledStep).where(ScheduledStep.case_id == case.id)
                    )
                ),
            }
        return result


def statuses(rt: Runtime) -> dict[str, int]:
    with rt.sessions() as s:
        rows = s.execute(
            select(InboundMessage.status, func.count()).group_by(InboundMessage.status)
        ).all()
        return {status: int(count) for status, count in rows}


# Texts of several kinds: a registered resident (home grid), a stranger naming a
# known address (another grid), a stranger without one (asked where).
KINDS = [
    ("registered", "楼道灯坏了"),
    ("stranger", "人民路12号 路灯不亮"),
    ("stranger", "楼道灯坏了，快来修"),
    ("registered", "翁山新村3幢 水管漏水"),
    ("stranger", "帮助"),
]


def senders(brt: Runtime, prefix: str) -> list[str]:
    phones = [f"+86137{prefix}{n:05d}" for n in range(len(KINDS))]
    with unit_of_work(brt.sessions) as session:
        grid1 = session.scalar(select(Region).where(Region.code == "DH-01"))
        for phone, (kind, _body) in zip(phones, KINDS, strict=True):
            if kind == "registered":
                make_resident(session, phone=phone, grid=grid1, address="翁山新村3幢")
    return phones


# The batch prefetches for its first messages, then for the rest: with a first
# share of 1, every later message is looked up after an earlier one has written.
prefetch_first = pytest.mark.parametrize("prefetch_first", [worker.PREFETCH_FIRST, 1])


@prefetch_first
def test_a_batch_does_what_its_messages_do_one_by_one(
    brt: Runtime, clock: Clock, monkeypatch: pytest.MonkeyPatch, prefetch_first: int
) -> None:
    monkeypatch.setattr(worker, "PREFETCH_FIRST", prefetch_first)
    one_by_one = [
        text_in(brt, phone, body)
        for phone, (_k, body) in zip(senders(brt, "100"), KINDS, strict=True)
    ]
    for _ in one_by_one:
        assert process_one(brt, now=clock.now) == "done"

    batched = [
        text_in(brt, phone, body)
        for phone, (_k, body) in zip(senders(brt, "200"), KINDS, strict=True)
    ]
    taken, committed = process_batch(brt, now=clock.now, limit=20)
    assert committed and taken == batched  # all in one transaction

    expected = [outcome(brt, m) for m in one_by_one]
    assert [outcome(brt, m) for m in batched] == expected
    # The comparison has teeth: forwards, acks, questions and cases are all there.
    assert expected[0]["case"]["participants"] == [(WORKER_A, "forwarded", "grid")]
    assert ("sender", "ack", ["code", "team"]) in expected[0]["sent"]
    assert expected[1]["case"]["grid"] == "DH-02"
    assert expected[2]["case"]["status"] == "awaiting_address"
    assert [t for _w, t, _p in expected[4]["sent"]] == ["help_resident"]


@prefetch_first
def test_a_message_sees_what_an_earlier_one_in_its_batch_wrote(
    brt: Runtime, clock: Clock, monkeypatch: pytest.MonkeyPatch, prefetch_first: int
) -> None:
    monkeypatch.setattr(worker, "PREFETCH_FIRST", prefetch_first)
    resident = senders(brt, "300")[0]
    opened = text_in(brt, resident, "楼道灯坏了")
    claim = text_in(brt, WORKER_A, "收到")  # the only case worker A is on: the one just opened
    taken, committed = process_batch(brt, now=clock.now, limit=20)
    assert committed and taken == [opened, claim]
    with brt.sessions() as s:
        case = s.scalar(select(Case).where(Case.resident_phone == resident))
        assert case is not None
        assert (case.status, case.claimed_by) == ("claimed", WORKER_A)
        message = s.get(InboundMessage, claim)
        assert message is not None and message.case_id == case.id
        templates = s.scalars(
            select(OutboundMessage.template)
            .where(OutboundMessage.inbound_id == claim)
            .order_by(OutboundMessage.id)
        ).all()
        assert "claimed_ok" in templates and "claimed_resident" in templates
        # The claim cancelled the steps the first message scheduled in the same batch.
        undone = s.scalars(
            select(ScheduledStep.kind).where(
                ScheduledStep.case_id == case.id, ScheduledStep.done_at.is_(None)
            )
        ).all()
        assert "claim_overdue" not in undone and "resolve_overdue" in undone


def test_one_senders_messages_go_one_per_batch_in_order(brt: Runtime, clock: Clock) -> None:
    resident, other = senders(brt, "400")[:2]
    first = text_in(brt, resident, "楼道灯坏了")
    second = text_in(brt, resident, "三楼也不亮")
    third = text_in(brt, other, "人民路12号 路灯不亮")
    fourth = text_in(brt, resident, "麻烦快点")

    taken, committed = process_batch(brt, now=clock.now, limit=20)
    assert committed and taken == [first, third]
    taken, committed = process_batch(brt, now=clock.now, limit=20)
    assert committed and taken == [second]
    assert process_inbound(brt, now=clock.now) == (1, 0)
    with brt.sessions() as s:
        case = s.scalar(select(Case).where(Case.resident_phone == resident))
        assert case is not None
        texts = [
            e.detail.get("text")
            for e in s.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
            )
            if e.kind in ("received", "message")
        ]
        assert texts == ["楼道灯坏了", "三楼也不亮", "麻烦快点"]
        assert {
            m.case_id
            for m in s.scalars(
                select(InboundMessage).where(InboundMessage.id.in_([first, second, fourth]))
            )
        } == {case.id}


def test_a_message_that_raises_costs_only_itself(
    brt: Runtime, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = inbound.open_case

    def open_case(ctx: Ctx, phone: str, text: str) -> Case:
        if "BOOM" in text:
            raise RuntimeError("boom")
        return real_open(ctx, phone, text)

    monkeypatch.setattr(inbound, "open_case", open_case)
    phones = senders(brt, "500")
    good = [text_in(brt, phones[0], "楼道灯坏了"), text_in(brt, phones[1], "人民路12号 路灯不亮")]
    bad = text_in(brt, phones[2], "楼道灯坏了 BOOM")
    good.append(text_in(brt, phones[3], "翁山新村3幢 水管漏水"))

    assert process_inbound(brt, now=clock.now) == (3, 1)
    assert statuses(brt) == {"processed": 3, "failed": 1}
    with brt.sessions() as s:
        failed = s.get(InboundMessage, bad)
        assert failed is not None and failed.status == "failed"
        assert "boom" in (failed.error or "")
        assert s.scalar(select(func.count()).where(OutboundMessage.inbound_id == bad)) == 0
        assert s.scalar(select(Case).where(Case.resident_phone == phones[2])) is None
    # The others were processed once each (the rolled-back batch left no trace).
    for message_id in good:
        done = outcome(brt, message_id)
        assert done["status"] == "processed"
        templates = [t for _w, t, _p in done["sent"]]
        assert len(templates) == len(set(templates)), templates
        assert done["case"]["events"].count("received") == 1


def test_the_auto_reply_cap_counts_replies_queued_in_the_batch(db_url: str, clock: Clock) -> None:
    rt = make_rt(db_url, clock, auto_reply_cap_per_hour=3, auto_reply_repeat_seconds=0)
    try:
        with unit_of_work(rt.sessions) as session:
            make_city(session)
        sender = "+8613700000777"
        # Two replies already sent this hour, from earlier batches.
        for _ in range(2):
            text_in(rt, sender, "帮助")
            assert process_inbound(rt, now=clock.now) == (1, 0)
        message_id = text_in(rt, sender, "帮助")
        # In a batch's transaction the outbox rows are queued, not written: the
        # cap must count them, or every reply of the batch would go.
        with unit_of_work(rt.sessions) as session:
            memo.enable(session)
            ctx = Ctx(session=session, rt=rt, now=clock.now, inbound_id=message_id)
            message = session.get(InboundMessage, message_id)
            assert message is not None
            inbound.prefetch(ctx, [message])
            for _ in range(3):
                ctx.send(None, sender, "help_resident")
            memo.flush_deferred(session)
        with rt.sessions() as s:
            sent = s.scalar(
                select(func.count()).where(
                    OutboundMessage.to_phone == sender,
                    OutboundMessage.template == "help_resident",
                )
            )
        assert sent == 3
        # And the next batch knows the hour's replies from the rows.
        text_in(rt, sender, "帮助")
        assert process_inbound(rt, now=clock.now) == (2, 0)  # the one above, and this one
        with rt.sessions() as s:
            assert s.scalar(select(func.count()).where(OutboundMessage.to_phone == sender)) == 3
    finally:
        rt.close()


def test_the_time_bound_leaves_the_rest_received(db_url: str, clock: Clock) -> None:
    rt = make_rt(db_url, clock, inbound_tx_seconds=1e-9)
    try:
        with unit_of_work(rt.sessions) as session:
            make_city(session)
        phones = [f"+861376000{n:04d}" for n in range(4)]
        ids = [text_in(rt, phone, "人民路12号 路灯不亮") for phone in phones]
        # Out of time at once: the transaction takes one message (never none) and stops.
        taken, committed = process_batch(rt, now=clock.now, limit=20)
        assert committed and taken == ids[:1]
        assert statuses(rt) == {"processed": 1, "received": 3}
        taken, committed = process_batch(rt, now=clock.now, limit=20)
        assert committed and taken == ids[1:2]
        assert process_inbound(rt, now=clock.now) == (2, 0)
        assert statuses(rt) == {"processed": 4}
    finally:
        rt.close()


def test_limit_and_max_seconds_still_bound_a_call(brt: Runtime, clock: Clock) -> None:
    phones = senders(brt, "700")
    for phone in phones:
        text_in(brt, phone, "楼道灯坏了")
    assert process_inbound(brt, now=clock.now, limit=2) == (2, 0)
    assert statuses(brt) == {"processed": 2, "received": 3}
    assert process_inbound(brt, now=clock.now, max_seconds=0) == (1, 0)
    assert statuses(brt) == {"processed": 3, "received": 2}
    assert process_inbound(brt, now=clock.now) == (2, 0)


@pytest.mark.parametrize("yield_seconds", [0.0, 3600.0], ids=["at-once", "after-an-hour"])
def test_on_sqlite_a_waiting_writer_ends_the_batch_once_it_has_run_its_share(
    db_url: str, clock: Clock, yield_seconds: float
) -> None:
    """The worker (a polite writer) commits after the message in hand when an
    eager writer (the API, the spill's replay) waits for SQLite's write lock,
    once the batch has run `inbound_yield_seconds`; before that the writer
    waits. On PostgreSQL nobody waits."""
    rt = make_rt(db_url, clock, inbound_yield_seconds=yield_seconds)
    try:
        with unit_of_work(rt.sessions) as session:
            make_city(session)
        taken, ids = _batch_with_a_writer_waiting(rt, clock)
    finally:
        rt.close()
    sqlite = rt.engine.dialect.name == "sqlite"
    assert taken == (ids[:1] if sqlite and yield_seconds == 0 else ids)


def test_on_sqlite_the_wait_for_the_lock_is_not_the_batch_s_own_time(
    sqlite_template: Path, tmp_path: Path, clock: Clock
) -> None:
    """A batch that waited for the write lock longer than `inbound_yield_seconds`
    has not run that long yet: when an eager writer queues after its first
    message, it goes on. (It used to commit then, after every message, its
    fixed cost paid per message: at 50 messages/s the worker fell behind.)
    The pace that sizes the next batch leaves the wait out too."""
    path = tmp_path / "gridline.db"
    shutil.copyfile(sqlite_template, path)
    rt = make_rt(f"sqlite:///{path}", clock, inbound_yield_seconds=0.5)
    lock = lock_for(str(path))
    holding = threading.Event()

    def hold_the_lock() -> None:  # an eager writer in a long transaction
        with unit_of_work(rt.sessions) as session:
            session.execute(select(func.count()).select_from(Region))
            holding.set()
            deadline = time.monotonic() + 20
            while lock.waiting() < 1:  # until the worker's batch queues behind it
                assert time.monotonic() < deadline, "the batch never waited"
                time.sleep(0.005)
            time.sleep(1.0)  # the batch waits a second: twice its yield time

    holder = threading.Thread(target=hold_the_lock)

    def first() -> None:
        holder.start()
        assert holding.wait(20)

    try:
        with unit_of_work(rt.sessions) as session:
            make_city(session)
        taken, ids = _batch_with_a_writer_waiting(rt, clock, before=first)
        holder.join(20)
        assert taken == ids
        assert rt.caches["inbound_seconds_per_message"] < 1.0 / len(ids)
    finally:
        rt.close()


def test_on_postgresql_a_code_taken_by_another_worker_fails_the_batch_not_its_messages(
    pg_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """In a batch a new case's INSERT carries its code, checked free, without a
    savepoint. When another worker takes the same code first, the unique
    constraint fails the batch: it is rolled back and its messages processed
    one by one (each code then written in a savepoint), none lost or failed."""
    rt = make_rt(pg_url, clock)
    rival = rt.sessions()
    try:
        with unit_of_work(rt.sessions) as session:
            make_city(session)
        phones = senders(rt, "720")[:3]
        for phone in phones:
            text_in(rt, phone, "楼道灯坏了")
        # The batch's first case draws 4321 eight times; every later draw is random.
        draws = iter([Scripted([4321] * 8)])
        monkeypatch.setattr(random, "SystemRandom", lambda: next(draws, random.Random()))
        # Another worker's case holds 4321, not committed yet: invisible to the check.
        rival.add(
            Case(
                code="4321",
                open_code="4321",
                status="open",
                resident_phone="+8613799990001",
                summary="",
            )
        )
        rival.flush()
        outcome: list[tuple[int, int]] = []
        batch = threading.Thread(target=lambda: outcome.append(process_inbound(rt, now=clock.now)))
        batch.start()
        with rt.engine.connect() as watch:  # until the batch's INSERT waits for the rival's row
            deadline = time.monotonic() + 20
            while not watch.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            ):
                assert time.monotonic() < deadline, "the batch never waited for the rival"
                time.sleep(0.01)
        rival.commit()
        batch.join(30)
        assert outcome == [(3, 0)]
        assert statuses(rt) == {"processed": 3}
        failed = [r for r in caplog.records if "processing them one by one" in r.getMessage()]
        assert len(failed) == 1 and "uq_cases_open_code" in str(failed[0].exc_info[1])
        with rt.sessions() as s:
            codes = {
                phone: code
                for phone, code in s.execute(select(Case.resident_phone, Case.open_code))
            }
        assert codes["+8613799990001"] == "4321"
        mine = [codes[p] for p in phones]
        assert len(mine) == len(set(mine)) == 3 and "4321" not in mine
    finally:
        rival.close()
        rt.close()
        _truncate_all(pg_url)


def _batch_with_a_writer_waiting(
    rt: Runtime, clock: Clock, *, before: Callable[[], None] = lambda: None
) -> tuple[list[int], list[int]]:
    """A batch of five messages during which, after the first, an eager writer
    queues for the lock; (the ids taken, the ids stored). `before` runs once
    the messages are stored, just before the batch."""
    phones = senders(rt, "710")
    ids = [text_in(rt, phone, "楼道灯坏了") for phone in phones]
    before()
    sqlite = rt.engine.dialect.name == "sqlite"
    webhook_done = threading.Event()

    def webhook() -> None:  # an eager writer: a transaction of its own
        text_in(rt, "+8613799990000", "另一条")
        webhook_done.set()

    started: list[threading.Thread] = []

    def enough() -> bool:  # asked after each message: start the writer once
        if not started:
            started.append(threading.Thread(target=webhook))
            started[0].start()
            if sqlite:
                lock = lock_for(str(rt.engine.url.database))
                deadline = time.monotonic() + 20
                while lock.waiting() < 1:
                    assert time.monotonic() < deadline, "the writer never waited"
                    time.sleep(0.005)
        return False

    with polite_writer():
        taken, committed = process_batch(rt, now=clock.now, limit=20, enough=enough)
    assert committed
    assert webhook_done.wait(20)
    started[0].join(10)
    return taken, ids
