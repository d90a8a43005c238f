"""Shared by the outbox tests (test_outbox, test_outbox_batch, test_long_texts):
the hotline, the backoff and lease they deliver with, numbered recipients, the
row helpers, and the real twilio client pointed at the fake Twilio."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from app.db import unit_of_work
from app.delivery.outbox import deliver_due, enqueue
from app.models.messages import OutboundMessage
from app.runtime import Runtime
from routing.delivery import PRIORITY_NORMAL, Backoff
from sms.twilio_gateway import TwilioGateway
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

HOTLINE = "+8657000000000"
BACKOFF = Backoff(base_seconds=10, cap_seconds=300, max_attempts=4)
LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class PhoneBlock:
    """Recipients +86137<block>NNNNN: each test module numbers its own block."""

    block: str

    def phone(self, n: int) -> str:
        return f"+86137{self.block}{n:05d}"

    def add(
        self, rt: Runtime, now: datetime, *numbers: int, priority: int = PRIORITY_NORMAL
    ) -> list[int]:
        """Enqueue one SMS per number, each with a body naming its number (so the fake's
        records can be matched to rows); returns the row ids."""
        with unit_of_work(rt.sessions) as session:
            added = [
                enqueue(
                    session,
                    to=self.phone(n),
                    template="relay_resident",
                    params={"code": f"{n:04d}", "team": "DH-01", "text": f"message {n}"},
                    locale="zh",
                    now=now,
                    priority=priority,
                )
                for n in numbers
            ]
        return [row.id for row in added]  # ids given by the commit's INSERT


def rows(rt: Runtime) -> list[OutboundMessage]:
    with rt.sessions() as session:
        return list(session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))


def deliver(
    rt: Runtime, gateway: object, now: datetime, backoff: Backoff = BACKOFF, **kwargs: object
) -> dict[str, int]:
    return deliver_due(rt.sessions, gateway, now=now, backoff=backoff, lease=LEASE, **kwargs)  # type: ignore[arg-type]


def twilio_gateway(fake: FakeTwilio, *, timeout: float = 5.0) -> TwilioGateway:
    """The real twilio client, sending to the fake Twilio over HTTP."""
    return TwilioGateway(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_number=HOTLINE,
        api_base=fake.base_url,
        timeout=timeout,
        status_callback="https://gridline.example.org/sms/status",
    )
