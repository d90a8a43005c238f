"""Fixtures of the office API tests: two counties, keys for their offices, phones."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from app.db import unit_of_work
from app.directory.apikeys import create_key
from app.runtime import Runtime
from app.settings import Settings
from tests.conftest import make_settings
from tests.factories import City, make_city, make_member, make_region, make_resident
from tests.helpers import Phone, RecordingGateway

# A second county, for isolation: 普陀区 > 沈家门街道 > 东港社区 > grid PT-01.
PT_WORKER = "+8613800000031"
PT_TOWN_OFFICE = "+8613900000030"
PT_RESIDENT = "+8613700000031"
# A second town of the first county (定海区 > 环南街道 > grid DH-HN-01).
HN_WORKER = "+8613800000041"
HN_RESIDENT = "+8613700000041"


@pytest.fixture
def city(rt: Runtime) -> City:
    with unit_of_work(rt.sessions) as session:
        city = make_city(session)
        pt = make_region(session, code="PT", name="普陀区", level="county")
        sjm = make_region(session, code="PT-SJM", name="沈家门街道", level="town", parent=pt)
        dg = make_region(session, code="PT-SJM-DG", name="东港社区", level="community", parent=sjm)
        pt01 = make_region(session, code="PT-01", name="东港一网格", level="grid", parent=dg)
        make_member(session, phone=PT_WORKER, name="赵敏", unit=pt01)
        make_member(session, phone=PT_TOWN_OFFICE, name="沈家门值班", unit=sjm, role="office")
        make_resident(session, phone=PT_RESIDENT, name="周伯", grid=pt01, address="东港新村1幢")
        hn = make_region(session, code="DH-HN", name="环南街道", level="town", parent=city.county)
        hn01 = make_region(session, code="DH-HN-01", name="环南一网格", level="grid", parent=hn)
        make_member(session, phone=HN_WORKER, name="孙丽", unit=hn01)
        make_resident(session, phone=HN_RESIDENT, name="吴婶", grid=hn01, address="环南1号")
    return city


KeyMaker = Callable[..., str]


@pytest.fixture
def make_key(rt: Runtime) -> KeyMaker:
    def _make(office: str, scope: str = "write") -> str:
        with unit_of_work(rt.sessions) as session:
            _row, key = create_key(session, office_code=office, scope=scope, now=rt.clock())
        return key

    return _make


@pytest.fixture
def phone(rt: Runtime, gateway: RecordingGateway, city: City) -> Callable[[str], Phone]:
    def _phone(number: str) -> Phone:
        return Phone(rt, gateway, number)

    return _phone


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Api:
    """A test client bound to one API key."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client = client
        self.key = key

    def get(self, path: str, **params: object) -> Response:
        return self.client.get(path, headers=auth(self.key), params=params or None)

    def post(
        self, path: str, json: object = None, *, headers: dict[str, str] | None = None
    ) -> Response:
        return self.client.post(path, json=json, headers={**auth(self.key), **(headers or {})})


@pytest.fixture
def work(rt: Runtime, gateway: RecordingGateway) -> Callable[[], object]:
    """One worker pass: sends what the API's actions put in the outbox."""
    from app.worker.loop import run_once

    return lambda: run_once(rt, gateway)


@pytest.fixture
def settings(db_url: str) -> Settings:
    # Webhook tests deliver to a receiver on 127.0.0.1.
    # (Limits have their own tests, which lower them.)
    return make_settings(db_url, webhook_allow_private=True, api_rate_limit_per_minute=100_000)


@pytest.fixture
def categories(rt: Runtime) -> None:
    """The default policy plus two categories (safety, health)."""
    from routing.policy import DEFAULT_POLICY_TOML, parse_policy

    rt.policies = parse_policy(
        DEFAULT_POLICY_TOML
        + '\n[categories.safety]\nkeywords = ["着火", "护栏"]\n'
        + '\n[categories.health]\nkeywords = ["药"]\nroles = ["doctor"]\n'
    )
