"""Fixtures: every database test runs on a real SQLite file and a real PostgreSQL.

`db_url` is parametrised over both backends. The schema comes from the real
Alembic migrations: SQLite tests copy a migrated template file; PostgreSQL
tests share one migrated database and truncate it after each test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.db import make_engine
from app.migrate import upgrade
from app.models.base import Base
from app.runtime import Runtime
from app.settings import Settings
from app.web import create_app
from tests.helpers import AUTH_TOKEN, PUBLIC_URL, RecordingGateway
from tests.pg import Cluster, PostgresUnavailable, start_cluster

HOTLINE = "+8657000000000"

pytest_plugins = ["tests.fake_twilio"]

# The browser suite starts a server and Chromium: it runs as its own pytest
# process (`pytest tests/browser`, which `make test` runs after this suite).
collect_ignore = ["browser"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--sqlite-only", action="store_true", help="skip the PostgreSQL half (not allowed in CI)"
    )


@pytest.fixture(scope="session")
def pg_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster | str]:
    url = os.environ.get("GRIDLINE_TEST_DATABASE_URL")
    if url:
        yield url
        return
    try:
        cluster = start_cluster()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_url(pg_cluster: Cluster | str) -> str:
    """A migrated PostgreSQL database for the session."""
    if isinstance(pg_cluster, str):
        url = pg_cluster
    else:
        admin = make_engine(pg_cluster.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE gridline_test"))
        admin.dispose()
        url = pg_cluster.url("gridline_test")
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def _truncate_all(url: str) -> None:
    engine = make_engine(url)
    names = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "gridline.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    if request.config.getoption("--sqlite-only"):
        if os.environ.get("CI"):
            pytest.fail("--sqlite-only is not allowed in CI")
        pytest.skip("--sqlite-only")
    url: str = request.getfixturevalue("pg_url")
    try:
        yield url
    finally:
        _truncate_all(url)


class Clock:
    """A settable clock: tests move time instead of sleeping."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now = self.now + timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock() -> Clock:
    # A Wednesday morning in Zhoushan (02:00 UTC = 10:00 Asia/Shanghai).
    return Clock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))


def make_settings(db_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": db_url,
        "sms_provider": "console",
        "validate_signatures": True,
        "twilio_auth_token": AUTH_TOKEN,
        "public_url": PUBLIC_URL,
        "hotline_number": HOTLINE,
        "locale": "zh",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def rt(settings: Settings, clock: Clock) -> Iterator[Runtime]:
    runtime = Runtime.build(settings, clock=clock)
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def gateway() -> RecordingGateway:
    return RecordingGateway()


@pytest.fixture
def client(rt: Runtime, gateway: RecordingGateway) -> Iterator[TestClient]:
    app = create_app(runtime=rt, gateway=gateway, start_worker=False)
    with TestClient(app) as test_client:
        yield test_client
