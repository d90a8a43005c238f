"""Test helpers: an in-tree recording gateway, signed webhook posting, SMS drivers."""

from __future__ import annotations

import html
import itertools
import random
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlencode

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from app.db import unit_of_work
from app.intake.store import InboundSms, store
from app.models.cases import Case
from app.models.messages import InboundMessage, OutboundMessage
from app.runtime import Runtime
from app.worker.loop import PassResult, run_once
from sms.gateway import OutgoingSms, SendResult

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC_URL = "https://gridline.example.org"

_sids = itertools.count(1)


def did_work(result: PassResult) -> bool:
    """Whether a worker pass did anything (a throttled send is not work): tests
    run passes until one does nothing."""
    sent = {} if "throttled" in result.sent else result.sent
    return bool(
        result.replayed
        or result.inbound
        or result.inbound_failed
        or result.steps
        or sent
        or result.webhooks
    )


class Scripted(random.Random):
    """Proposes the given case codes first (as `randint`), then random ones."""

    def __init__(self, codes: list[int]) -> None:
        super().__init__(7)
        self._codes = list(codes)

    def randint(self, a: int, b: int) -> int:
        return self._codes.pop(0) if self._codes else super().randint(a, b)


@dataclass
class RecordingGateway:
    """An honest fake: it accepts every SMS and remembers it."""

    name: str = "recording"
    sent: list[OutgoingSms] = field(default_factory=list)

    def send(self, sms: OutgoingSms) -> SendResult:
        self.sent.append(sms)
        return SendResult(provider_sid=f"SMrec{len(self.sent):030d}", status="queued")

    def close(self) -> None:
        return None

    def to(self, phone: str) -> list[str]:
        return [s.body for s in self.sent if s.to == phone]

    def take(self) -> list[OutgoingSms]:
        taken, self.sent = self.sent, []
        return taken


def new_sid() -> str:
    return f"SM{next(_sids):032x}"


def signed_post(
    client: TestClient,
    path: str,
    params: dict[str, str],
    *,
    token: str = AUTH_TOKEN,
    public_url: str = PUBLIC_URL,
    signature: str | None = None,
) -> Response:
    if signature is None:
        signature = RequestValidator(token).compute_signature(public_url + path, params)
    return client.post(
        path,
        content=urlencode(params).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    )


def webhook_params(
    *, sender: str, body: str, sid: str | None = None, **extra: str
) -> dict[str, str]:
    return {
        "MessageSid": sid or new_sid(),
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+8657000000000",
        "Body": body,
        "NumMedia": "0",
        **extra,
    }


class Phone:
    """Drive the platform as one phone: text the hotline, run the worker, read replies."""

    def __init__(self, rt: Runtime, gateway: RecordingGateway, number: str) -> None:
        self.rt = rt
        self.gateway = gateway
        self.number = number

    def text(self, body: str) -> PassResult:
        with unit_of_work(self.rt.sessions) as session:
            store(
                session,
                InboundSms(
                    message_sid=new_sid(),
                    from_phone=self.number,
                    to_phone=None,
                    body=body,
                    params={},
                    received_at=self.rt.clock(),
                ),
            )
        return run_once(self.rt, self.gateway)

    def inbox(self) -> list[str]:
        return self.gateway.to(self.number)

    def last(self) -> str:
        box = self.inbox()
        assert box, f"{self.number} received nothing"
        return box[-1]


def latest_case(session: Session) -> Case:
    case = session.scalar(select(Case).order_by(Case.id.desc()).limit(1))
    assert case is not None
    return case


def outbox(session: Session) -> list[OutboundMessage]:
    return list(session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))


def text_in(rt: Runtime, sender: str, body: str) -> int:
    """Store a text from `sender` as the webhook would; its message id."""
    with unit_of_work(rt.sessions) as session:
        store(
            session,
            InboundSms(
                message_sid=new_sid(),
                from_phone=sender,
                to_phone=None,
                body=body,
                received_at=rt.clock(),
            ),
        )
        found = session.scalar(select(func.max(InboundMessage.id)))
        assert found is not None
        return int(found)


def wait_for(
    condition: Callable[[], object], *, timeout: float = 30.0, what: str = "", pause: float = 0.05
) -> object:
    """Poll an outcome (a row in the database, a ready server, a thread's
    counter) until it holds; its value. Synchronising on the outcome, not on
    time: the timeout only bounds a failure (TimeoutError). The benches use it too."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(pause)


def unmasked_mobile(line: str, phone: str) -> bool:
    """Whether `line` shows the mobile `phone` (national digits, e.g.
    13758000013) in any encoding: percent-encoded once or twice, JSON `\\u`
    escapes, HTML entities, full width, spaced or dashed. Written apart from
    the masking it checks (sms/phones.py)."""
    text = line
    for _ in range(3):
        text = unquote(text)
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    text = unicodedata.normalize("NFKC", html.unescape(text))
    return phone in re.sub(r"[\s\-+]", "", text)
