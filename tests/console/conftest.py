"""Fixtures of the console tests: the API tests' two counties, staff accounts, a
logged-in browser-like client per staff member."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.console.accounts import create_staff
from app.db import unit_of_work
from app.directory import lookups as directory
from app.models.cases import Case
from app.models.directory import Region
from app.runtime import Runtime
from tests.api.conftest import city, make_key, phone, work  # noqa: F401  (shared fixtures)

PASSWORD = "correct horse battery"
ORIGIN = "https://testserver"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class Console:
    """A browser of one staff member: its own cookie jar, forms with their token."""

    def __init__(self, app: FastAPI) -> None:
        # HTTPS, as a browser reaches the console: the session cookie is Secure.
        self.client = TestClient(app, base_url=ORIGIN, follow_redirects=False)
        self.csrf = ""

    def login(self, username: str, password: str = PASSWORD, **headers: str) -> Response:
        r = self.client.post(
            "/console/login",
            data={"username": username, "password": password},
            headers={"Origin": ORIGIN, **headers},
        )
        if r.status_code == 303:
            page = self.client.get("/console")
            assert page.status_code == 200, page.text
            found = CSRF_RE.search(page.text)
            assert found, "no CSRF token on the queue page"
            self.csrf = found.group(1)
        return r

    def get(self, path: str, **params: object) -> Response:
        return self.client.get(path, params=params or None)

    def post(
        self,
        path: str,
        data: dict[str, object] | None = None,
        *,
        origin: str | None = ORIGIN,
        csrf: bool = True,
    ) -> Response:
        body: dict[str, object] = dict(data or {})
        if csrf:
            body.setdefault("csrf_token", self.csrf)
        headers = {"Origin": origin} if origin else {}
        return self.client.post(path, data=body, headers=headers)  # type: ignore[arg-type]


StaffMaker = Callable[..., str]


@pytest.fixture
def make_staff(rt: Runtime, city) -> StaffMaker:  # noqa: F811
    def _make(office: str, role: str = "supervisor", username: str | None = None) -> str:
        name = username or f"{office.lower()}-{role}"
        with unit_of_work(rt.sessions) as session:
            create_staff(
                session,
                username=name,
                office_code=office,
                role=role,
                password=PASSWORD,
                now=rt.clock(),
            )
        return name

    return _make


@pytest.fixture
def app(client: TestClient) -> FastAPI:
    application: FastAPI = client.app  # type: ignore[assignment]
    return application


@pytest.fixture
def browser(app: FastAPI, make_staff: StaffMaker) -> Iterator[Callable[..., Console]]:
    """`browser("DH-JF", "handler")`: a logged-in console for a new staff member."""
    opened: list[Console] = []

    def _open(office: str, role: str = "supervisor", username: str | None = None) -> Console:
        name = make_staff(office, role, username)
        console = Console(app)
        r = console.login(name)
        assert r.status_code == 303, r.text
        opened.append(console)
        return console

    yield _open
    for console in opened:
        console.client.close()


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2's cheapest parameters: the same code, hashes in microseconds.

    (test_accounts.py checks the production parameters on their own.)
    """
    from argon2 import PasswordHasher, profiles

    from app.console import accounts

    monkeypatch.setattr(accounts, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


def make_case(
    session: Session,
    *,
    grid: str,
    status: str = "open",
    code: str,
    summary: str = "楼道灯坏了",
    phone: str = "+8613700000555",  # noqa: F811  (not the fixture)
    claim_due: datetime | None = None,
    resolve_due: datetime | None = None,
    created: datetime | None = None,
    level: str = "grid",
    category: str | None = None,
    claimed_by: str | None = None,
) -> Case:
    """A case row as the routing would leave it (for queue states and numbers)."""
    region = session.scalar(select(Region).where(Region.code == grid))
    assert region is not None
    town = directory.ancestor_at(region, "town")
    county = directory.ancestor_at(region, "county")
    now = created or datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    case = Case(
        code=code,
        open_code=None if status == "closed" else code,
        status=status,
        level=level,
        priority="normal",
        category=category,
        resident_phone=phone,
        grid_id=region.id,
        town_id=town.id if town else None,
        county_id=county.id if county else None,
        summary=summary,
        routing_method="phone",
        routing_evidence={"method": "phone", "matched": "registered resident"},
        claimed_by=claimed_by or ("+8613800000001" if status != "open" else None),
        claim_due_at=claim_due or now + timedelta(minutes=30),
        resolve_due_at=resolve_due or now + timedelta(hours=72),
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    session.flush()
    return case
