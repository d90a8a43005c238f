"""The inbound and status webhooks, through the real ASGI app, signed with RequestValidator."""

from __future__ import annotations

import threading
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from twilio.request_validator import RequestValidator

from app.db import unit_of_work
from app.delivery.outbox import enqueue
from app.intake.store import InboundSms, store
from app.models.cases import Case
from app.models.messages import InboundMessage, OutboundMessage
from tests.helpers import AUTH_TOKEN, PUBLIC_URL, new_sid, signed_post, webhook_params


def _count(rt, model) -> int:
    with rt.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def test_signed_message_is_stored_and_answered_with_empty_twiml(client, rt):
    params = webhook_params(sender="13700000001", body="楼道灯坏了")
    response = signed_post(client, "/sms/inbound", params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.replace(" ", "").endswith("<Response/>")
    with rt.sessions() as s:
        message = s.scalar(select(InboundMessage))
        assert message.message_sid == params["MessageSid"]
        assert message.from_phone == "+8613700000001"  # stored as E.164
        assert message.body == "楼道灯坏了"
        assert message.status == "received"
    # Routing and sending happen in the worker, not in the request.
    assert _count(rt, Case) == 0
    assert _count(rt, OutboundMessage) == 0


def test_location_params_are_kept(client, rt):
    params = webhook_params(
        sender="+8613700000001", body="这里", Latitude="30.0", Longitude="122.1"
    )
    assert signed_post(client, "/sms/inbound", params).status_code == 200
    with rt.sessions() as s:
        assert s.scalar(select(InboundMessage)).params["Latitude"] == "30.0"


def test_gateway_retry_is_stored_once(client, rt):
    params = webhook_params(sender="+8613700000001", body="重复")
    first = signed_post(client, "/sms/inbound", params)
    second = signed_post(client, "/sms/inbound", params)
    assert first.status_code == second.status_code == 200
    assert _count(rt, InboundMessage) == 1


def test_concurrent_deliveries_of_one_sid_store_one_row(rt):
    sid = new_sid()
    barrier = threading.Barrier(6)
    results: list[bool] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            barrier.wait()
            with unit_of_work(rt.sessions) as session:
                results.append(
                    store(
                        session,
                        InboundSms(
                            message_sid=sid,
                            from_phone="+8613700000001",
                            to_phone=None,
                            body="x",
                            params={},
                            received_at=rt.clock(),
                        ),
                    )
                )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(results) == [False] * 5 + [True]
    assert _count(rt, InboundMessage) == 1


def test_wrong_signature_is_refused_and_nothing_stored(client, rt):
    params = webhook_params(sender="+8613700000001", body="x")
    bad = signed_post(client, "/sms/inbound", params, token="another-token")
    assert bad.status_code == 403
    assert "signature" in bad.json()["detail"].lower()
    missing = client.post(
        "/sms/inbound",
        content=urlencode(params).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert missing.status_code == 403
    assert _count(rt, InboundMessage) == 0


def test_signature_is_checked_against_public_url_not_the_local_one(client, rt):
    params = webhook_params(sender="+8613700000001", body="x")
    # Signed for the address the app sees locally (behind a proxy): refused.
    local = signed_post(client, "/sms/inbound", params, public_url="http://testserver")
    assert local.status_code == 403
    assert signed_post(client, "/sms/inbound", params, public_url=PUBLIC_URL).status_code == 200


def test_tampered_body_is_refused(client, rt):
    params = webhook_params(sender="+8613700000001", body="原文")
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + "/sms/inbound", params)
    tampered = {**params, "Body": "篡改"}
    response = signed_post(client, "/sms/inbound", tampered, signature=signature)
    assert response.status_code == 403
    assert _count(rt, InboundMessage) == 0


def test_bad_requests_get_4xx_with_a_reason(client, rt):
    cases = [
        ({"From": "+8613700000001", "Body": "no sid"}, 400, "MessageSid"),
        (webhook_params(sender="not-a-phone", body="x"), 400, "From"),
        (webhook_params(sender="+8613700000001", body="长" * 1601), 400, "Body"),
        # A To wider than its column was a 500 on PostgreSQL (SQLite stored it).
        (webhook_params(sender="+8613700000001", body="x", To="+86" + "5" * 31), 400, "To"),
        # Another number's texts are not the hotline's (it answers from itself).
        (webhook_params(sender="+8613700000001", body="x", To="+8613800138000"), 400, "hotline"),
    ]
    for params, status, word in cases:
        response = signed_post(client, "/sms/inbound", params)
        assert response.status_code == status, params
        assert word in response.json()["detail"]
    json_body = client.post("/sms/inbound", json={"From": "x"})
    assert json_body.status_code == 415
    assert _count(rt, InboundMessage) == 0


def test_the_hotline_in_another_spelling_is_the_hotline(client, rt):
    params = webhook_params(sender="+8613700000001", body="路灯坏了", To="+86 570 0000 0000")
    assert signed_post(client, "/sms/inbound", params).status_code == 200
    assert _count(rt, InboundMessage) == 1


def test_oversized_body_is_413(client, rt):
    params = webhook_params(sender="+8613700000001", body="x", Padding="a" * 70_000)
    response = signed_post(client, "/sms/inbound", params)
    assert response.status_code == 413
    assert _count(rt, InboundMessage) == 0


def test_invalid_utf8_is_400(client, rt):
    response = client.post(
        "/sms/inbound",
        content=b"MessageSid=SM1&Body=%FF%FE",
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"},
    )
    assert response.status_code in (400, 403)
    assert _count(rt, InboundMessage) == 0


def test_status_callback_is_signed_and_monotonic(client, rt):
    with unit_of_work(rt.sessions) as s:
        row = enqueue(
            s, to="+8613700000001", template="opted_in", params={}, locale="zh", now=rt.clock()
        )
        row.status = "sent"
        row.provider_sid = "SM" + "a" * 32
    base = {"MessageSid": "SM" + "a" * 32, "AccountSid": "AC" + "0" * 32}
    assert (
        signed_post(client, "/sms/status", {**base, "MessageStatus": "delivered"}).status_code
        == 204
    )
    # A late "sent" must not overwrite "delivered".
    assert signed_post(client, "/sms/status", {**base, "MessageStatus": "sent"}).status_code == 204
    unsigned = client.post(
        "/sms/status",
        content=urlencode({**base, "MessageStatus": "failed"}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert unsigned.status_code == 403
    with rt.sessions() as s:
        assert s.scalar(select(OutboundMessage)).delivery_status == "delivered"
    unknown = {"MessageSid": "SM" + "b" * 32, "MessageStatus": "delivered"}
    assert signed_post(client, "/sms/status", unknown).status_code == 204


def test_health_and_readiness(client):
    assert client.get("/healthz").text == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"


def test_metrics_report_database_counts(client, rt):
    signed_post(client, "/sms/inbound", webhook_params(sender="+8613700000001", body="x"))
    body = client.get("/metrics").text
    assert 'gridline_inbound_messages{status="received"} 1.0' in body
    assert "gridline_webhook_seconds_count 1.0" in body
    assert "gridline_outbox_oldest_unsent_seconds 0.0" in body


class _Counting:
    """An ASGI middleware that counts the HTTP requests it sees."""

    def __init__(self, app, seen: list[str]) -> None:  # type: ignore[no-untyped-def]
        self.app, self.seen = app, seen

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            self.seen.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


def test_gateway_webhooks_are_served_ahead_of_the_middleware_stack(rt, gateway):
    """POST /sms/inbound and /sms/status go straight to their endpoints
    (app/intake/webhooks.py), errors answered as everywhere else; the rest of
    the app, and the webhooks' other methods, go through FastAPI's stack.
    Both are still listed in the API docs."""
    from fastapi.testclient import TestClient

    from app.web import create_app

    seen: list[str] = []
    app = create_app(runtime=rt, gateway=gateway, start_worker=False)
    app.add_middleware(_Counting, seen=seen)
    with TestClient(app) as client:
        params = webhook_params(sender="+8613700000001", body="楼道灯坏了")
        assert signed_post(client, "/sms/inbound", params).status_code == 200
        refused = client.post("/sms/inbound", data=params, headers={"X-Twilio-Signature": "forged"})
        assert refused.status_code == 403
        assert refused.json() == {
            "error": "forbidden",
            "detail": "invalid or missing X-Twilio-Signature",
        }
        status = {"MessageSid": params["MessageSid"], "MessageStatus": "delivered"}
        assert signed_post(client, "/sms/status", status).status_code == 204
        assert client.post("/sms/status", data=status).status_code == 403
        assert client.get("/sms/inbound").status_code == 405
        assert client.get("/healthz").status_code == 200
        docs = client.get("/openapi.json").json()["paths"]
    assert seen == ["GET /sms/inbound", "GET /healthz", "GET /openapi.json"]
    assert "post" in docs["/sms/inbound"] and "post" in docs["/sms/status"]
    assert _count(rt, InboundMessage) == 1


def test_a_fault_behind_a_webhook_is_a_500_and_an_unreachable_database_a_503(
    rt, gateway, monkeypatch
):
    """The fast path (app/intake/webhooks.py) hands an unexpected error on to the
    server, which answers 500 (as FastAPI's own stack would), and answers an
    unreachable database with 503 and Retry-After. A fault is injected where
    the status callback records its status: no real input reaches it."""
    from fastapi.testclient import TestClient

    from app.intake import webhooks as sms_webhooks
    from app.web import create_app

    def bug(*_args, **_kwargs):
        raise RuntimeError("a bug")

    def unreachable(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    status = {"MessageSid": "SM" + "c" * 32, "MessageStatus": "delivered"}
    app = create_app(runtime=rt, gateway=gateway, start_worker=False)
    monkeypatch.setattr(sms_webhooks, "record_delivery_status", bug)
    with TestClient(app) as client, pytest.raises(RuntimeError, match="a bug"):
        signed_post(client, "/sms/status", status)  # re-raised to the server
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = signed_post(client, "/sms/status", status)
        assert answer.status_code == 500 and "a bug" not in answer.text
        monkeypatch.setattr(sms_webhooks, "record_delivery_status", unreachable)
        answer = signed_post(client, "/sms/status", status)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
        assert answer.json()["error"] == "unavailable"
