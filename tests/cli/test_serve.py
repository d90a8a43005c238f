"""`gridline serve` as a real process: webhook in, worker (a child process) out.

On SQLite with the console provider (the embedded default), and on
PostgreSQL with the twilio provider against the fake Twilio REST server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from app.db import make_engine, make_sessionmaker, unit_of_work
from app.migrate import upgrade
from app.models.cases import Case
from app.models.messages import OutboundMessage
from tests.factories import RESIDENT, WORKER_A, WORKER_B, make_city
from tests.helpers import AUTH_TOKEN, new_sid, wait_for, webhook_params
from tests.pg import _free_port

pytestmark = pytest.mark.slow


@contextmanager
def serve(env: dict[str, str]) -> Iterator[str]:
    with serve_process(env) as (base, _proc):
        yield base


@contextmanager
def serve_process(env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    full_env = {**os.environ, **env, "GRIDLINE_PUBLIC_URL": base}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", "serve", "--port", str(port)],
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
        yield base, proc
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


def _not_this_hour() -> str:
    """A digest hour far from now: the real worker runs on the wall clock, and
    the offices' morning digest would otherwise join the SMS these tests count."""
    return str((datetime.now(ZoneInfo("Asia/Shanghai")).hour + 12) % 24)


def _embedded(tmp_path: Path, **extra: str) -> tuple[str, dict[str, str]]:
    """A seeded SQLite database and the environment of the embedded default."""
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    _seed(url)
    env = {
        "GRIDLINE_DATABASE_URL": url,
        "GRIDLINE_SMS_PROVIDER": "console",
        "GRIDLINE_VALIDATE_SIGNATURES": "true",
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "GRIDLINE_DIGEST_HOUR": _not_this_hour(),
        **extra,
    }
    return url, env


def test_embedded_default_serves_and_works_the_queue(tmp_path):
    url, env = _embedded(tmp_path)
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
            "GRIDLINE_DIGEST_HOUR": _not_this_hour(),
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


def _children(pid: int) -> list[int]:
    """Live child processes of `pid` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _spawned(pid: int) -> list[int]:
    """Children of `pid` started by multiprocessing's spawn (not its helpers)."""
    found = []
    for child in _children(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as handle:
                if b"spawn_main" in handle.read():
                    found.append(child)
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_worker_process_is_woken_by_the_webhook_and_dies_with_the_server(tmp_path):
    # Idle, the worker would look again only after a minute: the webhook wakes it.
    url, env = _embedded(tmp_path, GRIDLINE_WORKER_POLL_SECONDS="60")
    with serve_process(env) as (base, proc):
        # The worker, a spawned child (its sender a thread of its own).
        children = wait_for(
            lambda: len(_spawned(proc.pid)) == 1 and _spawned(proc.pid),
            what="the worker process",
        )
        for count, body in enumerate(("楼道灯坏了", "三楼也不亮"), start=1):
            # The second arrives when the worker has gone idle (for a minute).
            assert _post(base, webhook_params(sender=RESIDENT, body=body)).status_code == 200
            wait_for(
                lambda count=count: (
                    len([r for r in _sent_rows(url) if r.to_phone == RESIDENT]) >= count
                ),
                timeout=20,
                what=f"acknowledgement {count}, sent by the woken worker",
            )
        proc.kill()  # SIGKILL: no shutdown code runs in the server
        proc.wait(10)
        wait_for(
            lambda: not any(_alive(child) for child in children),  # type: ignore[union-attr]
            timeout=20,
            what="the orphaned worker to exit",
        )
