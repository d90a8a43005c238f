"""The database unreachable (issue #6, point 5): signed webhooks are spooled and
replayed once each; the engine recovers from a PostgreSQL restart by itself.

The outage is real: a PostgreSQL URL nobody listens on, or a throwaway
cluster stopped and started again mid-test.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from app.db import make_engine
from app.intake.spool import ACTIVE, Spool
from app.migrate import upgrade
from app.models.messages import InboundMessage
from app.runtime import Runtime
from app.web import create_app
from app.worker.loop import run_once
from tests.conftest import Clock, make_settings
from tests.helpers import RecordingGateway, new_sid, signed_post, webhook_params
from tests.pg import PostgresUnavailable, start_cluster


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def down_client(spool_dir: Path, clock: Clock) -> Iterator[TestClient]:
    """The app, its database unreachable (nothing listens on the port)."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_free_port()}/gridline"
    settings = make_settings(url, spool_dir=spool_dir, database_connect_timeout_seconds=2)
    runtime = Runtime.build(settings, clock=clock)
    app = create_app(runtime=runtime, gateway=RecordingGateway(), start_worker=False)
    try:
        with TestClient(app) as client:
            yield client
    finally:
        runtime.close()


def spool_lines(spool_dir: Path) -> list[dict]:
    lines: list[dict] = []
    for path in sorted(spool_dir.glob("*")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines


def stored(rt: Runtime) -> list[tuple[str, str]]:
    with rt.sessions() as s:
        return [
            (m.message_sid, m.body)
            for m in s.scalars(select(InboundMessage).order_by(InboundMessage.message_sid))
        ]


def test_webhooks_are_spooled_while_the_database_is_unreachable_then_stored_once(
    down_client: TestClient, rt: Runtime, spool_dir: Path
) -> None:
    sent = [webhook_params(sender=f"+861370000{n:04d}", body=f"停水了 {n}") for n in range(5)]
    for params in sent:
        response = signed_post(down_client, "/sms/inbound", params)
        assert response.status_code == 200
        assert response.text.replace(" ", "").endswith("<Response/>")
    # A gateway retry while the database is down: spooled again, stored once later.
    assert signed_post(down_client, "/sms/inbound", sent[0]).status_code == 200
    lines = spool_lines(spool_dir)
    assert [line["message_sid"] for line in lines] == [p["MessageSid"] for p in [*sent, sent[0]]]
    assert lines[0]["from_phone"] == "+8613700000000"  # normalised before spooling
    # Bad input is still refused while the database is down.
    unsigned = signed_post(down_client, "/sms/inbound", sent[1], token="wrong")
    assert unsigned.status_code == 403
    assert len(spool_lines(spool_dir)) == 6

    # The database is back: the replay stores each message once and empties the spool.
    spool = Spool(spool_dir)
    assert spool.replay(rt.sessions) == 5
    assert stored(rt) == sorted((p["MessageSid"], p["Body"]) for p in sent)
    assert spool_lines(spool_dir) == []
    assert not spool.pending()
    # Replaying again (another worker, a restart) adds nothing.
    assert spool.replay(rt.sessions) == 0
    assert len(stored(rt)) == 5


def test_a_crash_after_commit_before_the_spool_is_removed_never_duplicates(
    down_client: TestClient, rt: Runtime, spool_dir: Path
) -> None:
    for n in range(3):
        params = webhook_params(sender=f"+861370000{n:04d}", body=f"m{n}")
        assert signed_post(down_client, "/sms/inbound", params).status_code == 200
    saved = spool_dir.parent / "saved.jsonl"
    shutil.copyfile(spool_dir / ACTIVE, saved)
    spool = Spool(spool_dir)
    assert spool.replay(rt.sessions) == 3
    # The state a crash between the commit and the unlink leaves: the file is still there.
    shutil.copyfile(saved, spool_dir / "inbound-1-1.replay")
    assert spool.pending()
    assert spool.replay(rt.sessions) == 0
    assert len(stored(rt)) == 3
    assert not spool.pending()


def test_a_torn_last_line_is_ignored_and_does_not_swallow_the_next(
    down_client: TestClient, rt: Runtime, spool_dir: Path
) -> None:
    first = webhook_params(sender="+8613700000001", body="第一条")
    assert signed_post(down_client, "/sms/inbound", first).status_code == 200
    # A crash in the middle of the next write: half a line, no newline, never answered 200.
    with (spool_dir / ACTIVE).open("ab") as handle:
        handle.write(b'{"message_sid":"SMtorn","from_phone":"+86137')
    second = webhook_params(sender="+8613700000002", body="第二条")
    assert signed_post(down_client, "/sms/inbound", second).status_code == 200
    third = webhook_params(sender="+8613700000003", body="第三条")
    assert signed_post(down_client, "/sms/inbound", third).status_code == 200
    # And one more torn tail at the very end.
    with (spool_dir / ACTIVE).open("ab") as handle:
        handle.write(b'{"message_sid":"SMtorn2"')
    assert Spool(spool_dir).replay(rt.sessions) == 3
    assert [sid for sid, _ in stored(rt)] == sorted(p["MessageSid"] for p in (first, second, third))
    assert not Spool(spool_dir).pending()


def test_the_worker_replays_the_spool_then_processes_the_messages(
    down_client: TestClient, db_url: str, spool_dir: Path, clock: Clock
) -> None:
    params = webhook_params(sender="+8613700000009", body="路灯坏了")
    assert signed_post(down_client, "/sms/inbound", params).status_code == 200
    rt = Runtime.build(make_settings(db_url, spool_dir=spool_dir), clock=clock)
    gateway = RecordingGateway()
    try:
        result = run_once(rt, gateway)
        assert result.replayed == 1 and result.inbound == 1
        with rt.sessions() as s:
            message = s.scalar(select(InboundMessage))
            assert message.status == "processed"
            assert message.received_at == clock.now  # the time it was accepted
        # The sender was answered (asked for an address: an unknown number).
        assert gateway.to("+8613700000009")
    finally:
        rt.close()


def test_the_app_replays_the_spool_at_start_up(
    down_client: TestClient, db_url: str, spool_dir: Path, clock: Clock
) -> None:
    params = webhook_params(sender="+8613700000009", body="路灯坏了")
    assert signed_post(down_client, "/sms/inbound", params).status_code == 200
    rt = Runtime.build(make_settings(db_url, spool_dir=spool_dir), clock=clock)
    try:
        app = create_app(runtime=rt, gateway=RecordingGateway(), start_worker=False)
        with TestClient(app):
            assert [sid for sid, _ in stored(rt)] == [params["MessageSid"]]
        assert not Spool(spool_dir).pending()
    finally:
        rt.close()


def test_status_callbacks_and_api_answer_503_while_the_database_is_down(
    down_client: TestClient,
) -> None:
    params = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}
    response = signed_post(down_client, "/sms/status", params)
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert down_client.get("/readyz").status_code == 503


def test_an_unwritable_spool_with_the_database_down_answers_503(
    tmp_path: Path, clock: Clock
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_free_port()}/gridline"
    runtime = Runtime.build(make_settings(url, spool_dir=blocker / "spool"), clock=clock)
    app = create_app(runtime=runtime, gateway=RecordingGateway(), start_worker=False)
    try:
        with TestClient(app) as client:
            params = webhook_params(sender="+8613700000001", body="x")
            response = signed_post(client, "/sms/inbound", params)
            # Not accepted: the gateway will retry it.
            assert response.status_code == 503
            assert "retry" in response.json()["detail"]
    finally:
        runtime.close()


# --- a real PostgreSQL restart --------------------------------------------------


def _wait_for(predicate, *, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling with a deadline, not a stand-in for synchronisation


@pytest.mark.slow
def test_nothing_acknowledged_is_lost_across_a_postgresql_restart(
    tmp_path: Path, clock: Clock
) -> None:
    try:
        cluster = start_cluster()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        admin = make_engine(cluster.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE gridline"))
        admin.dispose()
        url = cluster.url("gridline")
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()

        spool_dir = tmp_path / "spool"
        settings = make_settings(
            url, spool_dir=spool_dir, worker_poll_seconds=0.05, database_connect_timeout_seconds=2
        )
        rt = Runtime.build(settings, clock=clock)
        gateway = RecordingGateway()
        app = create_app(runtime=rt, gateway=gateway, start_worker=True)
        accepted: list[str] = []

        def post(client: TestClient, n: int) -> None:
            params = webhook_params(sender=f"+861370001{n:04d}", body=f"第{n}条", sid=new_sid())
            response = signed_post(client, "/sms/inbound", params)
            assert response.status_code == 200, response.text
            accepted.append(params["MessageSid"])

        def count(status: str | None = None) -> int:
            with rt.sessions() as s:
                stmt = select(func.count()).select_from(InboundMessage)
                if status:
                    stmt = stmt.where(InboundMessage.status == status)
                return int(s.scalar(stmt))

        try:
            with TestClient(app) as client:
                for n in range(3):  # before
                    post(client, n)
                _wait_for(lambda: count("processed") == 3, what="the first messages")

                cluster.halt()  # during: PostgreSQL is down
                for n in range(3, 6):
                    post(client, n)
                assert len(spool_lines(spool_dir)) == 3
                metrics = client.get("/metrics").text
                assert "gridline_database_up 0.0" in metrics
                assert "gridline_spool_messages 3.0" in metrics
                assert client.get("/readyz").status_code == 503

                cluster.resume()  # after: the same pool, its connections dead
                for n in range(6, 9):
                    post(client, n)
                everyone = {f"+861370001{n:04d}" for n in range(9)}
                _wait_for(
                    lambda: (
                        count("processed") == 9
                        and not Spool(spool_dir).pending()
                        and {s.to for s in list(gateway.sent)} == everyone
                    ),
                    what="every message stored, processed and answered",
                )
                assert client.get("/readyz").status_code == 200
        finally:
            rt.close()
        with make_engine(url).connect() as conn:
            sids = [r[0] for r in conn.execute(text("SELECT message_sid FROM inbound_messages"))]
        assert sorted(sids) == sorted(accepted)  # each exactly once
        # Every sender was answered, once, by the worker once the database was back.
        assert sorted(s.to for s in gateway.sent) == sorted(everyone)
    finally:
        cluster.stop()
