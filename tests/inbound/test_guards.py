"""Hostile senders (issue #6, point 6): a flood is throttled without losing a message
or delaying anyone else; ping-pong with auto-responders stops by itself."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from app.context import Ctx
from app.db import unit_of_work
from app.delivery.send import send
from app.models.cases import Case, CaseEvent
from app.models.directory import Region
from app.models.messages import InboundMessage, OutboundMessage
from app.runtime import Runtime
from app.worker.loop import run_once
from sms.templates import render
from tests.conftest import Clock, make_settings
from tests.factories import RESIDENT, WORKER_A, make_city, make_resident
from tests.helpers import RecordingGateway, did_work, signed_post, text_in, webhook_params

FLOODER = RESIDENT  # registered in DH-01, so their case is forwarded to worker A
AUTO = "+8613700000777"  # an unregistered number with an auto-responder


def make_rt(db_url: str, clock: Clock, **overrides: object) -> Runtime:
    return Runtime.build(make_settings(db_url, **overrides), clock=clock)


@pytest.fixture
def city(rt: Runtime) -> None:
    with unit_of_work(rt.sessions) as session:
        city = make_city(session)
        for n in range(20):
            make_resident(session, phone=other(n), grid=city.grid1, address="翁山新村3幢")


def other(n: int) -> str:
    return f"+86137200{n:05d}"


def drain(rt: Runtime, gateway: RecordingGateway) -> None:
    for _ in range(50):
        if not did_work(run_once(rt, gateway)):
            return
    raise AssertionError("the worker never went idle")


def templates_to(rt: Runtime, phone: str) -> list[str]:
    with rt.sessions() as s:
        return list(
            s.scalars(
                select(OutboundMessage.template)
                .where(OutboundMessage.to_phone == phone)
                .order_by(OutboundMessage.id)
            )
        )


# --- flood ---------------------------------------------------------------------


def test_a_flood_is_stored_throttled_once_and_others_are_unaffected(
    rt: Runtime, client, gateway: RecordingGateway, city: None, clock: Clock
) -> None:
    limit = rt.settings.inbound_flood_per_minute
    others_posted = 0
    for n in range(200):
        params = webhook_params(sender=FLOODER, body=f"快来人 {n}")
        assert signed_post(client, "/sms/inbound", params).status_code == 200
        if n % 10 == 5:
            body = f"楼道灯坏了（{others_posted}号）"
            params = webhook_params(sender=other(others_posted), body=body)
            assert signed_post(client, "/sms/inbound", params).status_code == 200
            others_posted += 1
    drain(rt, gateway)

    with rt.sessions() as s:
        # Nothing lost: every message is stored.
        assert s.scalar(select(func.count()).select_from(InboundMessage)) == 220
        statuses = dict(
            s.execute(
                select(InboundMessage.status, func.count())
                .where(InboundMessage.from_phone == FLOODER)
                .group_by(InboundMessage.status)
            ).all()
        )
        assert statuses == {"processed": limit, "throttled": 200 - limit}
        flood_case = s.scalar(select(Case).where(Case.resident_phone == FLOODER))
        throttled = s.scalars(
            select(InboundMessage).where(InboundMessage.status == "throttled")
        ).all()
        assert {m.case_id for m in throttled} == {flood_case.id}  # kept with the case
        events = s.scalars(
            select(CaseEvent.kind).where(
                CaseEvent.case_id == flood_case.id, CaseEvent.kind == "throttled"
            )
        ).all()
        assert events == ["throttled"]
    # One "slow down", however long the flood.
    assert templates_to(rt, FLOODER).count("slow_down") == 1
    assert render("slow_down", "zh") in gateway.to(FLOODER)
    # The team got the first `limit` messages, not 200.
    flood_sms = [b for b in gateway.to(WORKER_A) if f"#{flood_case.code}" in b]
    assert len(flood_sms) == limit
    # Every other sender was acknowledged and forwarded as usual.
    with rt.sessions() as s:
        for n in range(others_posted):
            case = s.scalar(select(Case).where(Case.resident_phone == other(n)))
            assert case is not None and case.status == "open"
            assert any(f"#{case.code}" in b for b in gateway.to(other(n)))
            assert any(f"#{case.code}" in b for b in gateway.to(WORKER_A))

    # A minute later the sender is heard again, and not told twice to slow down.
    clock.advance(minutes=2)
    text_in(rt, FLOODER, "现在情况怎样了")
    drain(rt, gateway)
    assert gateway.to(WORKER_A)[-1].endswith("现在情况怎样了")
    assert templates_to(rt, FLOODER).count("slow_down") == 1


@pytest.mark.slow
def test_in_a_surge_the_team_is_never_throttled(
    rt: Runtime, gateway: RecordingGateway, city: None, clock: Clock
) -> None:
    """A typhoon surge: 60 residents text within three minutes; the grid's
    worker claims and closes each case as it comes, 40 texts a minute, four
    times the flood limit. Every one of them is acted on."""
    surge = 60
    with unit_of_work(rt.sessions) as session:
        grid = session.scalar(select(Region).where(Region.code == "DH-01"))
        for n in range(20, surge):  # the `city` fixture registered 20
            make_resident(session, phone=other(n), grid=grid, address="翁山新村5幢")
    for n in range(surge):
        text_in(rt, other(n), f"楼道灯坏了（{n}号）")
        drain(rt, gateway)
        forward = gateway.to(WORKER_A)[-1]
        found = re.search(r"#(\d+)", forward)
        assert found and f"{n}号" in forward, forward
        clock.advance(seconds=1)
        text_in(rt, WORKER_A, f"{found.group(1)} 收到")
        drain(rt, gateway)
        clock.advance(seconds=1)
        text_in(rt, WORKER_A, f"{found.group(1)} 办结 已换灯泡")
        drain(rt, gateway)
        clock.advance(seconds=1)

    limit = rt.settings.inbound_flood_per_minute
    with rt.sessions() as s:
        statuses = dict(
            s.execute(
                select(InboundMessage.status, func.count())
                .where(InboundMessage.from_phone == WORKER_A)
                .group_by(InboundMessage.status)
            ).all()
        )
        assert statuses == {"processed": 2 * surge}, statuses
        assert 2 * surge / 3 > 3 * limit  # texts a minute: far over a resident's limit
        cases = s.scalars(select(Case).order_by(Case.id)).all()
        assert len(cases) == surge
        for case in cases:
            assert case.status == "resolved" and case.claimed_by == WORKER_A, case.code
            assert case.claimed_at is not None and case.claim_due_at is not None
            assert case.claimed_at <= case.claim_due_at
    assert "slow_down" not in templates_to(rt, WORKER_A)
    for n in range(surge):
        assert "已换灯泡" in gateway.to(other(n))[-1]


# --- loop guards -------------------------------------------------------------------


def converse(
    rt: Runtime,
    gateway: RecordingGateway,
    responders: dict[str, object],
    *,
    opener: tuple[str, str],
    rounds: int = 100,
    clock: Clock | None = None,
) -> int:
    """Run a conversation in which each number in `responders` answers every SMS it
    gets (a fixed text, or a callable of the count). Returns the rounds it took to
    go quiet; fails if it never does."""
    text_in(rt, *opener)
    drain(rt, gateway)
    seen = 0
    answered: dict[str, int] = {}
    for round_no in range(rounds):
        new = gateway.sent[seen:]
        seen = len(gateway.sent)
        replies = [sms.to for sms in new if sms.to in responders]
        if not replies:
            return round_no
        for to in replies:
            answered[to] = answered.get(to, 0) + 1
            reply = responders[to]
            text_in(rt, to, reply(answered[to]) if callable(reply) else str(reply))
            if clock is not None:
                clock.advance(minutes=1)
        drain(rt, gateway)
    raise AssertionError(f"still talking after {rounds} rounds")


def test_an_auto_responder_with_a_fixed_text_is_answered_once(
    rt: Runtime, gateway: RecordingGateway, city: None
) -> None:
    reply = "【自动回复】您好，我正在开会，稍后联系您。"
    converse(rt, gateway, {AUTO: reply}, opener=(AUTO, reply))
    # Asked once for an address; the same text again gets nothing more.
    assert templates_to(rt, AUTO) == ["ask_address"]
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).where(InboundMessage.from_phone == AUTO)) == 2


@pytest.fixture
def capped(db_url: str, clock: Clock) -> Iterator[Runtime]:
    runtime = make_rt(db_url, clock, auto_reply_cap_per_hour=5)
    with unit_of_work(runtime.sessions) as session:
        make_city(session)
    try:
        yield runtime
    finally:
        runtime.close()


def test_a_varying_auto_responder_stops_at_the_hourly_cap(capped: Runtime, clock: Clock) -> None:
    gateway = RecordingGateway()
    # A resident's phone that answers everything, with a counter (no two texts alike),
    # slowly enough (one a minute) that it is not a flood.
    converse(
        capped,
        gateway,
        {RESIDENT: lambda n: f"Auto-reply {n}: I am away"},
        opener=(RESIDENT, "Auto-reply 0: I am away"),
        clock=clock,
    )
    assert templates_to(capped, RESIDENT) == ["ack"] + ["ack_append"] * 4  # the cap: 5 an hour
    # An hour later the resident is answered again.
    clock.advance(hours=1)
    text_in(capped, RESIDENT, "灯还是没修好")
    drain(capped, gateway)
    # (The hour also took the unclaimed case to the town: the resident is told.)
    assert templates_to(capped, RESIDENT)[5:] == ["ack_append", "escalated_resident"]


def test_the_cap_counts_the_replies_queued_in_the_same_transaction(
    capped: Runtime, clock: Clock
) -> None:
    """Replies not yet written (the outbox flushes at commit) count too."""
    message = text_in(capped, AUTO, "?")
    with unit_of_work(capped.sessions) as session:
        loaded = session.get(InboundMessage, message)  # held, as the worker holds it
        ctx = Ctx(session=session, rt=capped, now=clock.now, inbound_id=message)
        for _ in range(7):
            send(ctx, None, AUTO, "help_resident")
        assert loaded is not None
    assert templates_to(capped, AUTO) == ["help_resident"] * 5


def test_two_auto_responders_do_not_talk_through_the_hotline(
    rt: Runtime, gateway: RecordingGateway, city: None
) -> None:
    # The resident's phone and the grid worker's phone both auto-answer.
    converse(
        rt,
        gateway,
        {RESIDENT: "我不在家，有事请留言", WORKER_A: "我在开车，稍后回复"},
        opener=(RESIDENT, "我不在家，有事请留言"),
    )
    # The worker's auto-reply reads as one: relayed to nobody; it gets one
    # answer (which case?), and its repeats none (the loop guards, by content).
    assert templates_to(rt, WORKER_A) == ["forward", "which_case"]
    resident = templates_to(rt, RESIDENT)
    assert resident.count("relay_resident") == 0
    assert len(resident) <= 2


def test_a_workers_auto_responder_gets_one_error_reply(
    rt: Runtime, gateway: RecordingGateway, city: None
) -> None:
    for n in range(2):  # two open cases: a text without a code is ambiguous
        text_in(rt, other(n), f"下水道堵了 {n}")
    drain(rt, gateway)
    assert templates_to(rt, WORKER_A) == ["forward", "forward"]
    # An auto-reply the grammar cannot tell from a person's words gets one
    # answer (which case?), and the loop guards stop the rest by content.
    converse(rt, gateway, {WORKER_A: "您好，我在外地"}, opener=(WORKER_A, "您好，我在外地"))
    assert templates_to(rt, WORKER_A) == ["forward", "forward", "which_case"]


def test_a_repeated_text_is_kept_on_the_case_but_not_echoed(
    rt: Runtime, gateway: RecordingGateway, city: None
) -> None:
    text_in(rt, RESIDENT, "楼道灯坏了")
    drain(rt, gateway)
    text_in(rt, RESIDENT, "楼道灯坏了")
    drain(rt, gateway)
    text_in(rt, RESIDENT, "三楼也坏了")  # a new text is forwarded and acknowledged as usual
    drain(rt, gateway)
    assert templates_to(rt, WORKER_A) == ["forward", "forward_append"]
    assert templates_to(rt, RESIDENT) == ["ack", "ack_append"]
    with rt.sessions() as s:
        case = s.scalar(select(Case))
        texts = [
            e.detail.get("text")
            for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))
            if e.kind in ("received", "message")
        ]
    assert texts == ["楼道灯坏了", "楼道灯坏了", "三楼也坏了"]
