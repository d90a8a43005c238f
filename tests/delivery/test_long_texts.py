"""Every text arrives: a resident's text at the inbound limit, forwarded with
its prefix, and a worker's long reply go out in numbered parts, each within
Twilio's 1,600 characters, through the real twilio client and the fake
Twilio (which refuses a longer body with error 21617, as Twilio does)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from app.db import unit_of_work
from app.models.messages import OutboundMessage
from app.runtime import Runtime
from sms.gateway import BODY_LIMITS
from sms.twilio_gateway import TwilioGateway
from tests.factories import RESIDENT, WORKER_A, make_city
from tests.fake_twilio import FakeTwilio
from tests.helpers import Phone, latest_case
from tests.outbox_support import twilio_gateway

PART = re.compile(r"^（(\d+)/(\d+)）")
LIMIT = BODY_LIMITS["twilio"]


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio.serve() as server:
        yield server


@pytest.fixture
def twilio(fake: FakeTwilio, rt: Runtime) -> Iterator[TwilioGateway]:
    with unit_of_work(rt.sessions) as session:
        make_city(session)
    gateway = twilio_gateway(fake)
    yield gateway
    gateway.close()


def _joined(bodies: list[str]) -> str:
    """The parts, in their numbered order, without their markers."""
    numbered = sorted((int(PART.match(b).group(1)), b) for b in bodies)  # type: ignore[union-attr]
    assert [n for n, _ in numbered] == list(range(1, len(bodies) + 1))
    return "".join(PART.sub("", b) for _, b in numbered)


def test_a_text_at_the_inbound_limit_reaches_the_team_in_parts(
    rt: Runtime, fake: FakeTwilio, twilio: TwilioGateway
) -> None:
    text = ("楼道灯坏了，三楼也不亮，晚上看不见路，老人上下楼很危险。" * 60)[:1600]
    Phone(rt, twilio, RESIDENT).text(text)
    forwards = [m.body for m in fake.sent_to(WORKER_A)]
    assert len(forwards) >= 2 and all(len(b) <= LIMIT for b in forwards)
    assert text in _joined(forwards)
    with rt.sessions() as s:
        statuses = set(s.scalars(select(OutboundMessage.status)))
        assert statuses == {"sent"}  # nothing refused (21617), nothing failed
        case = latest_case(s)
        assert case.level == "grid" and case.status == "open"  # not rushed to the county


def test_a_long_reply_reaches_the_resident_in_parts(
    rt: Runtime, fake: FakeTwilio, twilio: TwilioGateway
) -> None:
    Phone(rt, twilio, RESIDENT).text("楼道灯坏了")
    with rt.sessions() as s:
        code = latest_case(s).code
    worker = Phone(rt, twilio, WORKER_A)
    worker.text(f"{code} 收到")
    reply = ("师傅下午三点到，请家里留人。" * 200)[:1590]
    worker.text(f"{code} {reply}")
    relayed = [m.body for m in fake.sent_to(RESIDENT) if PART.match(m.body)]
    assert len(relayed) >= 2 and all(len(b) <= LIMIT for b in relayed)
    assert reply in _joined(relayed)
    with rt.sessions() as s:
        assert set(s.scalars(select(OutboundMessage.status))) == {"sent"}
