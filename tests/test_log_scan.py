"""Nothing reaches the logs unmasked: `gridline serve` is driven the way
clients do, with a mobile number in every place a request can carry one (a
webhook's `From`, a console search, a login's `next=` URL, percent-encoded
once and twice) and secrets (an Open311 `api_key=`, a bearer key, a session
cookie); then every line it logged is scanned."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from twilio.request_validator import RequestValidator

from app.console.accounts import create_staff
from app.db import unit_of_work
from app.directory.apikeys import create_key
from app.runtime import Runtime
from app.settings import Settings
from bench.loadgen import AUTH_TOKEN
from bench.servers import gridline_server, seed_city
from tests.helpers import unmasked_mobile, wait_for, webhook_params

pytestmark = pytest.mark.slow

MOBILE = "13758000013"
PASSWORD = "correct horse battery"


def test_a_served_day_logs_no_mobile_and_no_secret(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gridline.db'}"
    seed_city(url, residents=0)
    rt = Runtime.build(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
    with unit_of_work(rt.sessions) as session:
        _row, key = create_key(session, office_code="CITY", scope="read", now=rt.clock())
        create_staff(
            session,
            username="zhou",
            office_code="CITY",
            role="supervisor",
            password=PASSWORD,
            now=rt.clock(),
        )
    rt.close()
    server = gridline_server(url, tmp_path, GRIDLINE_LOG_LEVEL="DEBUG")
    server.start()
    try:
        params = webhook_params(sender=f"+86{MOBILE}", body=f"我的电话{MOBILE}，路灯坏了")
        signature = RequestValidator(AUTH_TOKEN).compute_signature(
            server.base_url + "/sms/inbound", params
        )
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            r = client.post("/sms/inbound", data=params, headers={"X-Twilio-Signature": signature})
            assert r.status_code == 200, r.text
            # Not logged in: each is redirected to the login with its URL in next=.
            client.get("/console", params={"q": f"王{MOBILE}"})
            client.get("/console/login", params={"next": f"/console?q=王{MOBILE}"})
            client.get(f"/console/cases/{MOBILE}")
            client.get("/api/v1/open311/requests.json", params={"api_key": key})
            client.get("/api/v1/cases", headers={"Authorization": f"Bearer {key}"})
            client.get(
                "/api/v1/cases", params={"q": f"+86 {MOBILE[:3]}-{MOBILE[3:7]}-{MOBILE[7:]}"}
            )
            r = client.post(
                "/console/login",
                data={"username": "zhou", "password": PASSWORD},
                headers={"Origin": server.base_url},
            )
            assert r.status_code == 303
            cookies = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
            client.get("/console", params={"q": f"王{MOBILE}"})
        wait_for(lambda: "open311" in server.output(), what="the access log of the last requests")
    finally:
        server.stop()
    lines = server.output().splitlines()
    assert any("/console" in line and "q=" in line for line in lines)  # access lines are there
    shown = [line for line in lines if unmasked_mobile(line, MOBILE)]
    assert shown == []
    secrets = [
        key,
        key.split("_")[-1],
        PASSWORD,
        *(part.split("=", 1)[1] for part in cookies.split("; ")),
    ]
    leaked = [line for line in lines for secret in secrets if secret and secret in line]
    assert leaked == []
