"""Faults under load (issue #6): the server killed, the database restarted.

(a) A flaky gateway (30 % of creates fail: 500, 503, 429, or accepted and the
    connection dropped) is covered by tests/delivery/test_outbox.py
    `test_every_row_ends_sent_or_failed_under_a_flaky_gateway`: every outbox row
    ends sent or failed with a reason, and the gateway holds each SMS once plus
    one copy per ambiguous attempt, counted.
(b) `gridline serve` killed with SIGKILL mid-load, then started again: every
    message it had answered 200 is stored once, processed, and forwarded (the
    forward is in the outbox). The requests the kill cut off are sent again, as
    a gateway retries them; a copy of a message that was stored before the
    answer was lost stores nothing new.
(c) PostgreSQL restarted (`pg_ctl restart -m fast`) mid-load: the same server
    process recovers by itself (reconnection, and the spool for what arrives
    while the database is down); nothing answered 200 is lost. A 503 is a
    refusal (the gateway retries it), not a loss.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from app.db import make_engine
from bench.loadgen import Result, Webhook, run_closed, webhook
from bench.servers import Server, gridline_server, resident_phone, seed_city, wait_for
from tests.load.checks import assert_each_processed_once, read, unprocessed
from tests.pg import PostgresUnavailable, start_cluster

pytestmark = pytest.mark.slow

MESSAGES = 100
CONCURRENCY = 20


def _hooks(server: Server) -> list[Webhook]:
    return [
        webhook(server.base_url, sender=resident_phone(n), body=f"水管漏水，第{n}户")
        for n in range(MESSAGES)
    ]


def _retry_until_answered(server: Server, hooks: list[Webhook], *, deadline: float) -> None:
    """Send each hook again until it is answered 200, as a gateway retries."""
    waiting = list(hooks)
    end = time.monotonic() + deadline
    while waiting:
        results = asyncio.run(
            run_closed(server.base_url, [h.payload for h in waiting], concurrency=10)
        )
        waiting = [waiting[r.index] for r in results if r.status != 200]
        if waiting and time.monotonic() > end:
            raise AssertionError(f"{len(waiting)} webhooks never answered 200")


def _process_deadline() -> float:
    return 60 + MESSAGES * 0.25


def test_sigkill_mid_load_loses_nothing_answered(load_db: str, tmp_path: Path) -> None:
    server = gridline_server(load_db, tmp_path, GRIDLINE_WORKER_POLL_SECONDS="0.2")
    server.start()
    try:
        hooks = _hooks(server)
        answered = 0
        killed_at: int | None = None
        pending_at_kill = 0

        def on_result(result: Result) -> None:
            nonlocal answered, killed_at, pending_at_kill
            answered += result.status == 200
            if killed_at is None and answered >= MESSAGES // 3:
                server.kill()
                killed_at = answered
                pending_at_kill = unprocessed(load_db)

        results = asyncio.run(
            run_closed(
                server.base_url,
                [h.payload for h in hooks],
                concurrency=CONCURRENCY,
                on_result=on_result,
            )
        )
        statuses = Counter(r.status for r in results)
        assert killed_at is not None
        assert set(statuses) <= {200, 0}, statuses  # answered, or cut off by the kill
        assert statuses[0] > 0, "the kill cut nothing off: not mid-load"
        first_answers = {hooks[r.index].sid for r in results if r.status == 200}

        server.start()  # same port, same database, same spool folder
        cut_off = [hooks[r.index] for r in results if r.status != 200]
        _retry_until_answered(server, cut_off, deadline=60)
        wait_for(
            lambda: unprocessed(load_db) == 0,
            timeout=_process_deadline(),
            what="the restarted worker to process everything",
            pause=0.25,
        )
    finally:
        server.stop()
    stored = read(load_db)
    assert first_answers <= set(stored.sids)  # nothing answered before the kill was lost
    assert len(stored.inbound) == MESSAGES
    assert_each_processed_once(stored, {h.sid: h.sender for h in hooks})
    print(
        f"\nkilled after {killed_at} answers with {pending_at_kill} stored but unprocessed; "
        f"{statuses[0]} requests cut off and sent again"
    )


def test_postgresql_restart_mid_load_loses_nothing_answered(tmp_path: Path) -> None:
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
        seed_city(url, residents=MESSAGES)
        server = gridline_server(
            url,
            tmp_path,
            GRIDLINE_WORKER_POLL_SECONDS="0.2",
            GRIDLINE_DATABASE_CONNECT_TIMEOUT_SECONDS="2",
        )
        server.start()
        try:
            hooks = _hooks(server)
            answered = 0
            restart: asyncio.Task[subprocess.CompletedProcess[bytes]] | None = None

            def pg_restart() -> subprocess.CompletedProcess[bytes]:
                # -l: without it the restarted postmaster logs to pg_ctl's stdout and
                # holds that pipe open; the options come back from postmaster.opts.
                data, log = str(cluster.root / "data"), str(cluster.root / "log")
                argv = [*cluster.as_user, cluster.pg_ctl, "-D", data, "-l", log, "-m", "fast"]
                return subprocess.run(
                    [*argv, "-w", "restart"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    check=False,
                    timeout=60,
                )

            async def on_result(result: Result) -> None:
                nonlocal answered, restart
                answered += result.status == 200
                if restart is None and answered >= MESSAGES // 3:
                    restart = asyncio.create_task(asyncio.to_thread(pg_restart))

            async def load() -> tuple[list[Result], subprocess.CompletedProcess[bytes]]:
                results = await run_closed(
                    server.base_url,
                    [h.payload for h in hooks],
                    concurrency=CONCURRENCY,
                    on_result=on_result,
                )
                assert restart is not None
                return results, await restart

            results, restarted = asyncio.run(load())
            assert restarted.returncode == 0, restarted.stderr.decode(errors="replace")
            statuses = Counter(r.status for r in results)
            # Answered, or refused with a 503 while neither database nor spool
            # could keep the message: never a 500, never a reset connection.
            assert set(statuses) <= {200, 503}, statuses
            first_answers = {hooks[r.index].sid for r in results if r.status == 200}

            refused = [hooks[r.index] for r in results if r.status != 200]
            _retry_until_answered(server, refused, deadline=60)
            wait_for(
                lambda: unprocessed(url) == 0,
                timeout=_process_deadline(),
                what="the worker to process everything after the restart",
                pause=0.25,
            )
            # The same process recovered by itself: ready again, never restarted.
            assert server.proc is not None and server.proc.poll() is None
            assert server.starts == 1
            assert httpx.get(server.base_url + "/readyz", timeout=5).status_code == 200
            spooled = server.output().count("spooled: database unavailable")
        finally:
            server.stop()
        stored = read(url)
        assert first_answers <= set(stored.sids)
        assert len(stored.inbound) == MESSAGES
        assert_each_processed_once(stored, {h.sid: h.sender for h in hooks})
        print(f"\nPostgreSQL restarted mid-load: {spooled} spooled, {statuses[503]} refused (503)")
    finally:
        cluster.stop()
