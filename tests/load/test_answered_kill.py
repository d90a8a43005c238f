"""Answered means saved, under SIGKILL: `gridline serve` killed the moment an
answer's status line reaches the client, for a mix of office actions (API
comments and claims, console notes and phone reveals with their audit row),
then started again: each answered change is in the database.

tests/test_answered_means_saved.py shows the same for every endpoint without
a kill (a second connection reads the change when the answer leaves); this
is the crash the guarantee is for.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from app.console.accounts import create_staff
from app.db import unit_of_work
from app.directory.apikeys import create_key
from app.models.cases import Case, CaseEvent
from app.models.console import AuditEntry
from app.models.directory import Region
from app.runtime import Runtime
from app.settings import Settings
from bench.loadgen import run_closed, webhook
from bench.servers import Server, gridline_server, resident_phone
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

CASES = 4
PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def _runtime(url: str) -> Runtime:
    return Runtime.build(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]


def _open_cases(server: Server, url: str) -> list[int]:
    """Residents text in; the worker opens their cases."""
    hooks = [
        webhook(server.base_url, sender=resident_phone(n), body="路灯坏了") for n in range(CASES)
    ]
    results = asyncio.run(run_closed(server.base_url, [h.payload for h in hooks], concurrency=4))
    assert {r.status for r in results} == {200}

    def opened() -> list[int]:
        with _runtime(url).sessions() as session:
            return list(session.scalars(select(Case.id).order_by(Case.id)))

    wait_for(lambda: len(opened()) == CASES, timeout=60, what="the cases to open")
    return opened()


def _county_office(url: str) -> str:
    rt = _runtime(url)
    try:
        with rt.sessions() as session:
            code = session.scalar(select(Region.code).where(Region.level == "county"))
        assert code is not None
        return code
    finally:
        rt.close()


def _answered_then_killed(
    server: Server, request: Callable[[httpx.Client], httpx.Request], cookies: httpx.Cookies
) -> int:
    """Send one request; SIGKILL the server as soon as its status line arrives."""
    with httpx.Client(base_url=server.base_url, timeout=30, cookies=cookies) as client:
        answer = client.send(request(client), stream=True)
        status = answer.status_code
        server.kill()
        answer.close()
    return status


def _count(url: str, query: object) -> int:
    rt = _runtime(url)
    try:
        with rt.sessions() as session:
            return int(session.scalar(query) or 0)  # type: ignore[call-overload]
    finally:
        rt.close()


def test_sigkill_after_each_answer_keeps_what_was_answered(load_db: str, tmp_path: Path) -> None:
    server = gridline_server(load_db, tmp_path, GRIDLINE_WORKER_POLL_SECONDS="0.2")
    office = _county_office(load_db)
    rt = _runtime(load_db)
    with unit_of_work(rt.sessions) as session:
        _row, key = create_key(session, office_code=office, scope="write", now=rt.clock())
        create_staff(
            session,
            username="zhou",
            office_code=office,
            role="supervisor",
            password=PASSWORD,
            now=rt.clock(),
        )
    rt.close()
    api = {"Authorization": f"Bearer {key}"}
    origin = {"Origin": server.base_url}
    server.start()
    try:
        cases = _open_cases(server, load_db)
        with httpx.Client(base_url=server.base_url, timeout=30) as browser:
            r = browser.post(
                "/console/login", data={"username": "zhou", "password": PASSWORD}, headers=origin
            )
            assert r.status_code == 303, r.text
            found = CSRF_RE.search(browser.get("/console").text)
            assert found
            csrf, cookies = found.group(1), httpx.Cookies(browser.cookies)

        def api_post(path: str, body: dict[str, str]) -> Callable[[httpx.Client], httpx.Request]:
            return lambda c: c.build_request("POST", path, json=body, headers=api)

        def form_post(path: str, form: dict[str, str]) -> Callable[[httpx.Client], httpx.Request]:
            data = {**form, "csrf_token": csrf}
            return lambda c: c.build_request("POST", path, data=data, headers=origin)

        def comments(case_id: int) -> object:
            return (
                select(func.count())
                .select_from(CaseEvent)
                .where(CaseEvent.case_id == case_id, CaseEvent.kind == "comment")
            )

        actions: list[tuple[str, Callable[[httpx.Client], httpx.Request], object]] = [
            (
                "API comment",
                api_post(f"/api/v1/cases/{cases[0]}/comment", {"body": "已联系"}),
                comments(cases[0]),
            ),
            (
                "API claim",
                api_post(f"/api/v1/cases/{cases[1]}/claim", {}),
                select(func.count()).where(Case.id == cases[1], Case.status == "claimed"),
            ),
            (
                "console reveal",
                form_post(f"/console/cases/{cases[2]}/reveal", {"purpose": "电话回访居民"}),
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.case_id == cases[2], AuditEntry.action == "reveal_phone"),
            ),
            (
                "console note",
                form_post(f"/console/cases/{cases[3]}/note", {"body": "已电话联系"}),
                comments(cases[3]),
            ),
        ]
        for what, request, saved in actions:
            assert _count(load_db, saved) == 0, what
            status = _answered_then_killed(server, request, cookies)
            assert status in (200, 303), (what, status)
            # Read with the server dead: nothing can commit after the answer now.
            assert _count(load_db, saved) == 1, f"{what}: answered {status}, then lost"
            server.start()
    finally:
        server.stop()
