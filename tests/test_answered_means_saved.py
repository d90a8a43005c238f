"""Answered means saved: the moment an answer to a state-changing request
leaves the app, a second connection to the database already reads the change
(and its audit row), for every such endpoint of the API, the console and the
SMS webhooks.

The app runs inside `Witness`, an ASGI wrapper that reads every table through
a connection of its own when the response starts, i.e. when a client could
have the answer. A commit made after that (FastAPI runs a yield dependency's
exit after the response by default) shows as a difference between that read
and the one after the request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.pool import NullPool

from app.db import unit_of_work
from app.delivery.outbox import enqueue
from app.models.cases import Case
from app.models.schema import Base
from app.runtime import Runtime
from app.web import create_app
from tests.api.conftest import Api, city, make_key, phone, settings  # noqa: F401  (shared fixtures)
from tests.console.conftest import (  # noqa: F401  (shared fixtures)
    Console,
    cheap_argon2,
    make_staff,
)
from tests.factories import RESIDENT
from tests.helpers import RecordingGateway, signed_post, webhook_params

Rows = dict[str, list[tuple[Any, ...]]]


def _reader(url: str) -> Engine:
    # A plain engine: no BEGIN IMMEDIATE on SQLite (a reader must not queue
    # behind the request's own write lock), no pool (a fresh connection each
    # time, nothing cached).
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, poolclass=NullPool)


class Witness:
    """ASGI wrapper: reads the whole database when a response starts."""

    def __init__(self, app: FastAPI, url: str) -> None:
        self.app = app
        self.engine = _reader(url)
        self.at_answer: list[Rows] = []

    def read(self) -> Rows:
        with self.engine.connect() as conn:
            return {
                table.name: [
                    tuple(row)
                    for row in conn.execute(select(table).order_by(*table.primary_key.columns))
                ]
                for table in Base.metadata.sorted_tables
            }

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.at_answer.append(self.read())
            await send(message)

        await self.app(scope, receive, watch)


@dataclass
class World:
    rt: Runtime
    witness: Witness
    client: TestClient
    case_id: int
    town: Api
    staff: Callable[..., str]
    console: Callable[..., Console]


@pytest.fixture
def world(rt: Runtime, city, make_key, make_staff, phone) -> Iterator[World]:  # noqa: F811
    gateway = RecordingGateway()
    app = create_app(runtime=rt, gateway=gateway, start_worker=False)
    witness = Witness(app, rt.settings.database_url)
    phone(RESIDENT).text("楼道灯坏了")
    with unit_of_work(rt.sessions) as session:
        case_id = session.scalars(select(Case.id)).one()
    opened: list[Console] = []

    def console(role: str = "supervisor") -> Console:
        browser = Console(witness)  # type: ignore[arg-type]  (any ASGI app)
        assert browser.login(make_staff("DH-JF", role)).status_code == 303
        opened.append(browser)
        return browser

    with TestClient(witness) as client:  # type: ignore[arg-type]
        town = Api(client, make_key("DH-JF"))
        yield World(
            rt, witness, client, case_id, town, lambda role: make_staff("DH-JF", role), console
        )
    for browser in opened:
        browser.client.close()
    witness.engine.dispose()


def _status_callback(w: World) -> Response:
    sid = "SM" + "a" * 32
    with unit_of_work(w.rt.sessions) as session:
        row = enqueue(
            session, to=RESIDENT, template="opted_in", params={}, locale="zh", now=w.rt.clock()
        )
        row.status, row.provider_sid = "sent", sid
    params = {"MessageSid": sid, "AccountSid": "AC" + "0" * 32, "MessageStatus": "delivered"}
    return signed_post(w.client, "/sms/status", params)


def _hook(w: World) -> Response:
    body = {"url": "http://127.0.0.1:9/hook", "events": ["case.opened"]}
    return w.town.post("/api/v1/webhooks", body)


def _unhook(w: World) -> Response:
    hook = _hook(w).json()
    return w.town.client.delete(
        f"/api/v1/webhooks/{hook['id']}", headers={"Authorization": f"Bearer {w.town.key}"}
    )


def _api(action: str, body: dict[str, str] | None = None) -> Callable[[World], Response]:
    return lambda w: w.town.post(f"/api/v1/cases/{w.case_id}/{action}", body)


def _console_case(action: str, **form: str) -> Callable[[World], Response]:
    def do(w: World) -> Response:
        browser = w.console()
        if action in ("resolve", "reply"):
            browser.post(f"/console/cases/{w.case_id}/claim")
        return browser.post(f"/console/cases/{w.case_id}/{action}", form)

    return do


def _login(w: World) -> Response:
    return Console(w.witness).login(w.staff("handler"))  # type: ignore[arg-type]


def _logout(w: World) -> Response:
    return w.console().post("/console/logout")


def _bulk(w: World) -> Response:
    return w.console().post("/console/bulk", {"action": "claim", "case": str(w.case_id)})


def _export(w: World) -> Response:
    return w.console().post("/console/export", {"view": "to_claim"})


def _reveal(w: World) -> Response:
    return w.console("handler").post(
        f"/console/cases/{w.case_id}/reveal", {"purpose": "电话回访居民"}
    )


# Every state-changing route, and a request to it that changes something.
REQUESTS: dict[str, list[tuple[str, Callable[[World], Response]]]] = {
    "POST /sms/inbound": [
        (
            "text",
            lambda w: signed_post(
                w.client, "/sms/inbound", webhook_params(sender=RESIDENT, body="还是不亮")
            ),
        )
    ],
    "POST /sms/status": [("delivered", _status_callback)],
    "POST /api/v1/cases/{case_id}/claim": [("claim", _api("claim"))],
    "POST /api/v1/cases/{case_id}/assign": [
        ("assign", _api("assign", {"phone": "+8613900001111"}))
    ],
    "POST /api/v1/cases/{case_id}/escalate": [
        ("escalate", _api("escalate", {"reason": "需要区里协调"}))
    ],
    "POST /api/v1/cases/{case_id}/resolve": [("resolve", _api("resolve", {"note": "已修好"}))],
    "POST /api/v1/cases/{case_id}/comment": [("comment", _api("comment", {"body": "已联系"}))],
    "POST /api/v1/cases/{case_id}/message": [("message", _api("message", {"body": "下午到"}))],
    "POST /api/v1/cases/{case_id}/transfer": [("transfer", _api("transfer", {"grid": "DH-02"}))],
    "POST /api/v1/webhooks": [("create", _hook)],
    "DELETE /api/v1/webhooks/{webhook_id}": [("delete", _unhook)],
    "POST /console/login": [("login", _login)],
    "POST /console/logout": [("logout", _logout)],
    "POST /console/cases/{case_ref}/reveal": [("reveal", _reveal)],
    "POST /console/cases/{case_ref}/{action}": [
        ("claim", _console_case("claim")),
        ("reply", _console_case("reply", body="师傅下午到")),
        ("note", _console_case("note", body="已电话联系")),
        ("assign", _console_case("assign", phone="13900001111")),
        ("transfer", _console_case("transfer", grid="DH-02")),
        ("escalate", _console_case("escalate", reason="需要区里协调")),
        ("misrouted", _console_case("misrouted", reason="不是本网格")),
        ("resolve", _console_case("resolve", note="已修好")),
    ],
    "POST /console/bulk": [("claim", _bulk)],
    "POST /console/export": [("csv", _export)],
}
CASES = [
    pytest.param(route, do, id=f"{route}:{name}")
    for route, requests in REQUESTS.items()
    for name, do in requests
]


def _changing_routes(app: FastAPI) -> set[str]:
    found: set[str] = set()

    def walk(routes: Any, prefix: str = "") -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                for method in route.methods - {"GET", "HEAD", "OPTIONS"}:
                    found.add(f"{method} {prefix}{route.path}")
            elif hasattr(route, "original_router"):  # an included router
                walk(route.original_router.routes, prefix + route.include_context.prefix)

    walk(app.routes)
    return found


def test_every_state_changing_route_is_witnessed(world: World) -> None:
    app: FastAPI = world.witness.app
    assert _changing_routes(app) == set(REQUESTS)


@pytest.mark.parametrize(("route", "do"), CASES)
def test_the_change_is_committed_when_the_answer_leaves(
    world: World, route: str, do: Callable[[World], Response]
) -> None:
    before = world.witness.read()
    count = len(world.witness.at_answer)
    answer = do(world)
    assert answer.status_code < 400, (route, answer.status_code, answer.text[:300])
    after = world.witness.read()
    assert after != before, f"{route}: the request changed nothing"
    # Every answer of the request (set-up requests included) left after its commit.
    assert world.witness.at_answer[count:], "no answer was seen"
    assert world.witness.at_answer[-1] == after, f"{route}: answered before its commit"
