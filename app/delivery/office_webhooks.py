"""Webhooks to office systems, signed the Standard Webhooks way.

A case event that an office subscribed to becomes a `WebhookDelivery` row in
the transaction of the change (`on_case_event`, called by `cases.record`). The
worker POSTs due rows with httpx (`deliver_due`, on a thread of its own in
`gridline serve`: app/worker/loop.py `OfficeWebhooks`), one lease at a time
like the SMS outbox, each attempt cut off after `webhook_timeout_seconds` in
all; every POST is a `WebhookAttempt` row; non-2xx answers, network errors
and attempts cut off are retried with backoff until `webhook_max_attempts`.

Signature (https://www.standardwebhooks.com): `webhook-signature: v1,<base64
HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`, keyed with the
base64-decoded part of the endpoint's `whsec_…` secret.

Only http(s) URLs are accepted, and a host that resolves to a private,
loopback, link-local or otherwise non-public address is refused, at
registration and again before every POST (a name may be re-pointed), unless
`webhook_allow_private` is set.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.cases.payload import case_out
from app.db import unit_of_work
from app.directory.offices import CITY_CODE
from app.errors import DomainError
from app.models.cases import Case, CaseEvent
from app.models.offices import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.runtime import Runtime
from routing.delivery import Backoff

log = logging.getLogger("gridline.webhooks")

# Timeline event kinds → webhook event types.
EVENT_TYPES: dict[str, str] = {
    "routed": "case.opened",
    "claimed": "case.claimed",
    "assigned": "case.assigned",
    "escalated": "case.escalated",
    "claim_overdue": "case.overdue",
    "overdue": "case.overdue",
    "transferred": "case.transferred",
    "resolved": "case.resolved",
    "reopened": "case.reopened",
    "closed": "case.closed",
    "comment": "case.commented",
    "undelivered": "case.undelivered",  # a reply to the resident never arrived
}
WEBHOOK_EVENTS = tuple(sorted(set(EVENT_TYPES.values())))
_ERROR_WIDTH = 2000


class UnsafeUrl(DomainError):
    status_code = 422
    code = "unsafe_url"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one message."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse what an office must not make us call (see the module docstring)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl("only http:// and https:// URLs with a host are accepted")
    if parts.username or parts.password:
        raise UnsafeUrl("credentials in the URL are not accepted")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeUrl(f"{parts.hostname} does not resolve") from exc
    for info in infos:
        if not _is_public(str(info[4][0])):
            raise UnsafeUrl(f"{parts.hostname} resolves to a non-public address")


# ---------------------------------------------------------------- producing


def on_case_event(session: Session, case: Case, event: CaseEvent, *, locale: str) -> int:
    """Queue deliveries of `event` to the endpoints of the offices that see `case`."""
    event_type = EVENT_TYPES.get(event.kind)
    if event_type is None:
        return 0
    with session.no_autoflush:
        codes = [CITY_CODE, *(r.code for r in (case.town, case.county) if r is not None)]
        candidates = session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.active.is_(True), WebhookEndpoint.office_code.in_(codes))
            .order_by(WebhookEndpoint.id)
        )
        endpoints = [e for e in candidates if event_type in e.events]
        if not endpoints:
            return 0
        payload = {
            "type": event_type,
            "timestamp": event.at.isoformat(),
            "data": {
                "case": case_out(session, case, locale),
                "event": {
                    "at": event.at.isoformat(),
                    "kind": event.kind,
                    "actor": event.actor,
                    "channel": event.channel,
                    "detail": event.detail,
                },
            },
        }
    for endpoint in endpoints:
        session.add(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                message_id="msg_" + uuid.uuid4().hex,
                event_type=event_type,
                case_id=case.id,
                payload=payload,
                status="pending",
                next_attempt_at=event.at,
                created_at=event.at,
            )
        )
    return len(endpoints)


# ---------------------------------------------------------------- delivering


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    attempt: int
    message_id: str
    url: str
    secret: str
    body: bytes
    active: bool


@dataclass(frozen=True)
class _Outcome:
    outcome: str  # delivered, retry, refused
    status_code: int | None = None
    error: str | None = None
    duration_ms: int | None = None


def _lease(session: Session, *, now: datetime, lease: timedelta) -> _Job | None:
    row = session.scalar(
        select(WebhookDelivery)
        .where(
            or_(
                and_(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now),
                and_(WebhookDelivery.status == "sending", WebhookDelivery.lease_until <= now),
            )
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if row is None:
        return None
    endpoint = session.get(WebhookEndpoint, row.endpoint_id)
    assert endpoint is not None
    row.status = "sending"
    row.attempts += 1
    row.lease_until = now + lease
    body = json.dumps(row.payload, ensure_ascii=False, separators=(",", ":")).encode()
    return _Job(
        delivery_id=row.id,
        attempt=row.attempts,
        message_id=row.message_id,
        url=endpoint.url,
        secret=endpoint.secret,
        body=body,
        active=endpoint.active,
    )


def _post(job: _Job, *, now: datetime, allow_private: bool, deadline: float) -> _Outcome:
    """POST one attempt; it ends within `deadline` seconds, answered or not."""
    if not job.active:
        return _Outcome("refused", error="the endpoint was removed")
    try:
        check_url(job.url, allow_private=allow_private)
    except UnsafeUrl as exc:
        return _Outcome("refused", error=exc.message)
    timestamp = int(now.timestamp())
    headers = {
        "content-type": "application/json",
        "user-agent": "Gridline-Webhooks/1",
        "webhook-id": job.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(
            job.secret, message_id=job.message_id, timestamp=timestamp, body=job.body
        ),
    }
    started = time.perf_counter()
    try:
        response = asyncio.run(_send(job.url, job.body, headers, deadline))
    except TimeoutError:
        return _Outcome("retry", error=f"no complete answer within {deadline:g} s")
    except httpx.HTTPError as exc:
        return _Outcome("retry", error=f"{exc.__class__.__name__}: {exc}"[:_ERROR_WIDTH])
    took = int((time.perf_counter() - started) * 1000)
    if 200 <= response.status_code < 300:
        return _Outcome("delivered", status_code=response.status_code, duration_ms=took)
    return _Outcome(
        "retry",
        status_code=response.status_code,
        error=f"HTTP {response.status_code}",
        duration_ms=took,
    )


async def _send(url: str, body: bytes, headers: dict[str, str], deadline: float) -> httpx.Response:
    # httpx's timeouts bound each connect and each read: a receiver that
    # trickles a byte at a time would hold the attempt for ever. The whole
    # attempt is cancelled at `deadline` instead.
    async with (
        httpx.AsyncClient(timeout=deadline, follow_redirects=False) as client,
        asyncio.timeout(deadline),
    ):
        return await client.post(url, content=body, headers=headers)


def _finish(
    session: Session, job: _Job, result: _Outcome, *, now: datetime, backoff: Backoff
) -> str:
    row = session.get(WebhookDelivery, job.delivery_id)
    assert row is not None
    outcome = result.outcome
    if outcome == "retry" and job.attempt >= backoff.max_attempts:
        outcome = "failed"
    session.add(
        WebhookAttempt(
            delivery_id=job.delivery_id,
            at=now,
            status_code=result.status_code,
            outcome=outcome,
            error=result.error,
            duration_ms=result.duration_ms,
        )
    )
    # Fencing: only the holder of the current lease moves the row (see app/delivery/outbox.py).
    if row.status != "sending" or row.attempts != job.attempt:
        if outcome == "delivered" and row.status != "delivered":
            row.status, row.delivered_at = "delivered", now
        return outcome
    row.lease_until = None
    row.last_error = result.error
    if outcome == "delivered":
        row.status, row.delivered_at = "delivered", now
    elif outcome == "retry":
        row.status = "pending"
        row.next_attempt_at = now + backoff.delay(job.attempt)
    else:
        row.status = "failed"
    return outcome


def deliver_due(rt: Runtime, *, now: datetime | None = None, limit: int = 50) -> dict[str, int]:
    """POST the due deliveries, one lease at a time; returns counts by outcome.

    Each attempt is leased, signed and recorded at the clock's time when it
    is made (`now` pins it: tests), so that its `webhook-timestamp` is
    when it was sent however long the attempts before it took; each ends
    within `GRIDLINE_WEBHOOK_TIMEOUT_SECONDS`.
    """
    settings = rt.settings
    backoff = Backoff(
        base_seconds=settings.webhook_backoff_base_seconds,
        cap_seconds=max(3600.0, settings.webhook_backoff_base_seconds),
        max_attempts=settings.webhook_max_attempts,
    )
    lease = timedelta(seconds=2 * settings.webhook_timeout_seconds + 10)
    counts: dict[str, int] = {}
    for _ in range(limit):
        with unit_of_work(rt.sessions) as session:
            job = _lease(session, now=now or rt.clock(), lease=lease)
        if job is None:
            break
        result = _post(
            job,
            now=now or rt.clock(),
            allow_private=settings.webhook_allow_private,
            deadline=settings.webhook_timeout_seconds,
        )
        with unit_of_work(rt.sessions) as session:
            outcome = _finish(session, job, result, now=now or rt.clock(), backoff=backoff)
        counts[outcome] = counts.get(outcome, 0) + 1
        log.info("webhook %s attempt %d: %s", job.message_id, job.attempt, outcome)
    return counts
