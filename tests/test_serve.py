"""`gridline serve` as a real process: webhook in, worker thread out.

On SQLite with the console provider (the embedded default), and on
PostgreSQL with the twilio provider against the fake Twilio REST server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from app.db import make_engine, make_sessionmaker, unit_of_work
from app.migrate import upgrade
from app.models import Case, OutboundMessage
from tests.factories import RESIDENT, WORKER_A, WORKER_B, make_city
from tests.helpers import AUTH_TOKEN, new_sid, webhook_params
from tests.pg import _free_port

pytestmark = pytest.mark.slow


def wait_for(condition: Callable[[], object], *, timeout: float = 30.0, what: str = "") -> object:
    """Poll a condition until it holds: synchronising on the outcome, not on time."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def serve(env: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    full_env = {**os.environ, **env, "GRIDLINE_PUBLIC_URL": base}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, what="the server to be ready")
        yield base
    finally:
        proc.terminate()
        try:
            output, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        # Whatever the server logged, no phone number went out unmasked.
        assert "13700000001" not in output and "13800000001" not in output, output[-2000:]


def _seed(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    with unit_of_work(make_sessionmaker(engine)) as session:
        make_city(session)
    engine.dispose()


def _post(base: str, params: dict[str, str]) -> httpx.Response:
    url = f"{base}/sms/inbound"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    return httpx.post(
        url,
        content=urlencode(params).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
        timeout=10,
    )


def _sent_rows(url: str) -> list[OutboundMessage]:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            return list(
                session.scalars(select(OutboundMessage).where(OutboundMessage.status == "sent"))
            )
    finally:
        engine.dispose()


def test_embedded_default_serves_and_works_the_queue(tmp_path):
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    _seed(url)
    env = {
        "GRIDLINE_DATABASE_URL": url,
        "GRIDLINE_SMS_PROVIDER": "console",
        "GRIDLINE_VALIDATE_SIGNATURES": "true",
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    }
    with serve(env) as base:
        response = _post(base, webhook_params(sender=RESIDENT, body="楼道灯坏了"))
        assert response.status_code == 200
        # The forward and the ack are written in one transaction and sent in one pass.
        rows = wait_for(
            lambda: [r for r in _sent_rows(url) if r.to_phone == RESIDENT] and _sent_rows(url),
            what="forward and ack",
        )
        # Who is on shift depends on the wall clock of the run: A by day, A and B by night.
        assert {RESIDENT, WORKER_A} <= {r.to_phone for r in rows} <= {RESIDENT, WORKER_A, WORKER_B}
        unsigned = httpx.post(f"{base}/sms/inbound", data={"MessageSid": new_sid()}, timeout=10)
        assert unsigned.status_code == 403


def test_postgres_with_twilio_provider(pg_url, fake_twilio):
    _seed(pg_url)
    try:
        env = {
            "GRIDLINE_DATABASE_URL": pg_url,
            "GRIDLINE_SMS_PROVIDER": "twilio",
            "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "GRIDLINE_TWILIO_API_BASE": fake_twilio.base_url,
            "GRIDLINE_HOTLINE_NUMBER": "+8657000000000",
        }
        with serve(env) as base:
            assert _post(base, webhook_params(sender=RESIDENT, body="水管漏水")).status_code == 200
            wait_for(
                lambda: any(m.to == RESIDENT for m in fake_twilio.messages),
                what="the acknowledgement at the fake Twilio",
            )
            by_to = {m.to: m for m in fake_twilio.messages}
            assert {RESIDENT, WORKER_A} <= set(by_to) <= {RESIDENT, WORKER_A, WORKER_B}
            assert all(m.from_ == "+8657000000000" for m in fake_twilio.messages)
            assert by_to[WORKER_A].status_callback == f"{base}/sms/status"
            engine = make_engine(pg_url)
            with make_sessionmaker(engine)() as session:
                case = session.scalar(select(Case))
                assert case is not None and f"#{case.code}" in by_to[WORKER_A].body
            engine.dispose()
    finally:
        from tests.conftest import _truncate_all

        _truncate_all(pg_url)
