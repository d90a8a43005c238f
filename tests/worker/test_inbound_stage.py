"""The worker's inbound stage (app/worker/loop.py): each stored message in a
transaction of its own, one sender's in order, a failing one costing only
itself, the stage bounded by count and by its (injected) timer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from app.context import Ctx
from app.db import unit_of_work
from app.inbound import residents
from app.models.cases import Case, CaseEvent
from app.models.directory import Region
from app.models.messages import InboundMessage, OutboundMessage
from app.runtime import Runtime
from app.worker.loop import process_inbound, process_one
from tests.conftest import Clock, make_settings
from tests.factories import make_city, make_resident
from tests.helpers import text_in


@pytest.fixture
def wrt(db_url: str, clock: Clock) -> Iterator[Runtime]:
    runtime = Runtime.build(make_settings(db_url), clock=clock)
    with unit_of_work(runtime.sessions) as session:
        make_city(session)
    try:
        yield runtime
    finally:
        runtime.close()


def statuses(rt: Runtime) -> dict[str, int]:
    with rt.sessions() as s:
        rows = s.execute(
            select(InboundMessage.status, func.count()).group_by(InboundMessage.status)
        ).all()
        return {status: int(count) for status, count in rows}


def _registered(rt: Runtime, phone: str) -> None:
    with unit_of_work(rt.sessions) as session:
        grid = session.scalar(select(Region).where(Region.code == "DH-01"))
        make_resident(session, phone=phone, grid=grid, address="翁山新村3幢")


def test_one_senders_messages_are_acted_on_in_order(wrt: Runtime, clock: Clock) -> None:
    resident, other = "+8613740000001", "+8613740000002"
    _registered(wrt, resident)
    first = text_in(wrt, resident, "楼道灯坏了")
    second = text_in(wrt, resident, "三楼也不亮")
    text_in(wrt, other, "人民路12号 路灯不亮")
    fourth = text_in(wrt, resident, "麻烦快点")
    assert process_one(wrt, now=clock.now) == "done"
    with wrt.sessions() as s:
        assert s.get(InboundMessage, first).status == "processed"  # type: ignore[union-attr]
        assert s.get(InboundMessage, second).status == "received"  # type: ignore[union-attr]
    assert process_inbound(wrt, now=clock.now) == (3, 0)
    with wrt.sessions() as s:
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
        ids = [first, second, fourth]
        linked = s.scalars(select(InboundMessage.case_id).where(InboundMessage.id.in_(ids)))
        assert set(linked) == {case.id}
    assert process_one(wrt, now=clock.now) is None  # nothing left


def test_a_message_that_raises_costs_only_itself(
    wrt: Runtime, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = residents.open_case

    def open_case(ctx: Ctx, phone: str, text: str) -> Case:
        if "BOOM" in text:
            raise RuntimeError("boom")
        return real_open(ctx, phone, text)

    monkeypatch.setattr(residents, "open_case", open_case)
    good = [text_in(wrt, "+8613750000001", "人民路12号 路灯不亮")]
    bad = text_in(wrt, "+8613750000002", "楼道灯坏了 BOOM")
    good.append(text_in(wrt, "+8613750000003", "人民路12号 路灯不亮"))

    assert process_inbound(wrt, now=clock.now) == (2, 1)
    assert statuses(wrt) == {"processed": 2, "failed": 1}
    with wrt.sessions() as s:
        failed = s.get(InboundMessage, bad)
        assert failed is not None and failed.status == "failed"
        assert "boom" in (failed.error or "")
        assert s.scalar(select(func.count()).where(OutboundMessage.inbound_id == bad)) == 0
        assert s.scalar(select(Case).where(Case.resident_phone == "+8613750000002")) is None
        for message_id in good:
            message = s.get(InboundMessage, message_id)
            assert message is not None and message.case_id is not None
            sent = s.scalar(select(func.count()).where(OutboundMessage.inbound_id == message_id))
            assert sent and sent > 0


class Ticks:
    """A timer that moves on by `step` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_the_stage_is_bounded_by_count_and_by_its_timer(wrt: Runtime, clock: Clock) -> None:
    for n in range(6):
        text_in(wrt, f"+861376000{n:04d}", "人民路12号 路灯不亮")
    assert process_inbound(wrt, now=clock.now, limit=2) == (2, 0)
    assert statuses(wrt) == {"processed": 2, "received": 4}
    # Each reading of the timer is 10 s later: past a 15 s budget after the first
    # message (never none: a pass always progresses), well within 100 s.
    wrt.timer = Ticks(10.0)
    assert process_inbound(wrt, now=clock.now, max_seconds=15) == (2, 0)
    assert process_inbound(wrt, now=clock.now, max_seconds=0) == (1, 0)
    wrt.timer = Ticks(10.0)
    assert process_inbound(wrt, now=clock.now, max_seconds=100) == (1, 0)
    assert statuses(wrt) == {"processed": 6}
