"""Webhooks to office systems: signed, sent by the worker, retried, one row per attempt."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.delivery.office_webhooks import UnsafeUrl, check_url, sign
from app.models.offices import WebhookAttempt, WebhookDelivery
from tests.api.conftest import PT_RESIDENT, Api, auth
from tests.api.receiver import verify
from tests.factories import RESIDENT, WORKER_A

pytest_plugins = ["tests.api.receiver"]


def _register(api: Api, receiver, events: list[str]) -> dict:
    r = api.post("/api/v1/webhooks", {"url": receiver.url, "events": events})
    assert r.status_code == 201, r.text
    receiver.secret = r.json()["secret"]
    return r.json()


def test_sign_matches_the_standard_webhooks_example():
    # The example of the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signature = sign(
        secret, message_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330, body=body
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_an_escalation_reaches_the_offices_that_see_it_signed(
    client, make_key, phone, receiver, clock, rt
):
    town = Api(client, make_key("DH-JF"))
    hook = _register(town, receiver, ["case.escalated", "case.resolved"])
    assert hook["events"] == ["case.escalated", "case.resolved"] and hook["active"]
    assert "secret" not in town.get("/api/v1/webhooks").json()[0]
    # Another county's office subscribed to everything hears nothing of DH's cases.
    other = Api(client, make_key("PT"))
    other_hook = other.post(
        "/api/v1/webhooks",
        {"url": receiver.url + "/pt", "events": ["case.opened", "case.escalated"]},
    ).json()

    phone(RESIDENT).text("违章搭建")
    code = town.get("/api/v1/cases").json()["items"][0]["code"]
    assert receiver.received == []  # routed/forwarded: not subscribed
    phone(WORKER_A).text(f"{code} 上报 需要执法")  # the worker pass delivers it too

    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.valid and got.path == "/gridline"
    assert got.headers["webhook-timestamp"] == str(int(clock.now.timestamp()))
    assert got.headers["webhook-id"].startswith("msg_")
    assert got.headers["content-type"] == "application/json"
    payload = got.json
    assert payload["type"] == "case.escalated"
    assert payload["data"]["case"]["code"] == code and payload["data"]["case"]["level"] == "town"
    assert payload["data"]["event"]["detail"]["reason"] == "需要执法"
    assert "13800000001" not in got.body.decode()

    deliveries = town.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()
    assert [(d["type"], d["status"]) for d in deliveries] == [("case.escalated", "delivered")]
    assert deliveries[0]["id"] == got.headers["webhook-id"]
    assert [(a["outcome"], a["status_code"]) for a in deliveries[0]["attempts"]] == [
        ("delivered", 200)
    ]
    assert other.get(f"/api/v1/webhooks/{other_hook['id']}/deliveries").json() == []

    # The PT office hears its own cases.
    phone(PT_RESIDENT).text("码头护栏松了")
    assert [r.json["type"] for r in receiver.received if r.path.endswith("/pt")] == ["case.opened"]


def test_failures_are_retried_with_backoff_each_attempt_a_row(
    client, make_key, phone, receiver, clock, work, rt
):
    city = Api(client, make_key("CITY"))
    _register(city, receiver, ["case.commented"])
    phone(RESIDENT).text("楼道灯坏了")
    case_id = city.get("/api/v1/cases").json()["items"][0]["id"]
    receiver.answers = [500, 503]
    city.post(f"/api/v1/cases/{case_id}/comment", {"body": "记一笔"})
    work()
    assert len(receiver.received) == 1
    work()  # not due yet: backoff
    assert len(receiver.received) == 1
    clock.advance(minutes=5)
    work()
    clock.advance(minutes=5)
    work()
    assert len(receiver.received) == 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # one message
    assert all(r.valid for r in receiver.received)
    with rt.sessions() as s:
        delivery = s.scalar(select(WebhookDelivery))
        assert delivery.status == "delivered" and delivery.attempts == 3
        outcomes = s.scalars(select(WebhookAttempt.outcome).order_by(WebhookAttempt.id)).all()
        assert outcomes == ["retry", "retry", "delivered"]


def test_gives_up_after_the_last_attempt_and_survives_a_dead_receiver(
    client, make_key, phone, receiver, clock, work, rt
):
    rt.settings = rt.settings.model_copy(update={"webhook_max_attempts": 2})
    city = Api(client, make_key("CITY"))
    hook = city.post(
        "/api/v1/webhooks", {"url": "http://127.0.0.1:9/nothing-listens", "events": ["case.opened"]}
    ).json()
    phone(RESIDENT).text("楼道灯坏了")  # the pass tries once: connection refused
    clock.advance(hours=2)
    work()
    deliveries = city.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()
    assert deliveries[0]["status"] == "failed"
    assert [a["outcome"] for a in deliveries[0]["attempts"]] == ["retry", "failed"]
    assert "Connect" in deliveries[0]["attempts"][0]["error"]
    clock.advance(hours=2)
    assert not work().webhooks  # nothing left to send


def test_removed_webhook_gets_nothing_more(client, make_key, phone, receiver, work, rt):
    town = Api(client, make_key("DH-JF"))
    hook = _register(town, receiver, ["case.opened", "case.commented"])
    phone(RESIDENT).text("楼道灯坏了")
    assert len(receiver.received) == 1
    case_id = town.get("/api/v1/cases").json()["items"][0]["id"]
    town.post(f"/api/v1/cases/{case_id}/comment", {"body": "x"})  # queued, not yet sent
    r = town.client.delete(f"/api/v1/webhooks/{hook['id']}", headers=auth(town.key))
    assert r.status_code == 204
    work()
    town.post(f"/api/v1/cases/{case_id}/comment", {"body": "y"})
    work()
    assert len(receiver.received) == 1
    assert town.get("/api/v1/webhooks").json()[0]["active"] is False
    deliveries = town.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()
    assert [d["status"] for d in deliveries] == ["failed", "delivered"]
    reader = Api(town.client, "")
    assert reader.client.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 401


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/x",
        "http://localhost/x",
        "http://10.1.2.3/x",
        "http://192.168.0.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
        "ftp://example.org/x",
        "file:///etc/passwd",
        "http://user:pw@93.184.216.34/x",
        "https:///nohost",
        "http://no-such-host.invalid/x",
    ],
)
def test_unsafe_urls_are_refused(url):
    with pytest.raises(UnsafeUrl):
        check_url(url, allow_private=False)


def test_public_literal_is_accepted_and_registration_checks_it(client, make_key, rt, city):
    check_url("https://93.184.216.34/hook", allow_private=False)
    rt.settings = rt.settings.model_copy(update={"webhook_allow_private": False})
    office = Api(client, make_key("DH"))
    r = office.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/x", "events": ["case.opened"]})
    assert r.status_code == 422 and r.json()["error"] == "unsafe_url"
    r = office.post("/api/v1/webhooks", {"url": "https://93.184.216.34/x", "events": ["nope"]})
    assert r.status_code == 422
    assert (
        Api(client, make_key("DH", "read"))
        .post("/api/v1/webhooks", {"url": "https://93.184.216.34/x", "events": ["case.opened"]})
        .status_code
        == 403
    )


def test_a_target_that_turned_private_is_refused_at_delivery(client, make_key, phone, receiver, rt):
    city = Api(client, make_key("CITY"))
    hook = _register(city, receiver, ["case.opened"])
    rt.settings = rt.settings.model_copy(update={"webhook_allow_private": False})
    phone(RESIDENT).text("楼道灯坏了")
    assert receiver.received == []
    delivery = city.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()[0]
    assert delivery["status"] == "failed"
    assert delivery["attempts"][0]["outcome"] == "refused"
    assert verify  # the receiver's verifier is what the other tests rely on
