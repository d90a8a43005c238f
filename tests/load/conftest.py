"""Fixtures of the load and fault tests: a seeded city per backend, copied or
cloned into a fresh database for each test, and `gridline serve` as a process.

Sizes are bounded for the normal suite (about a minute per test and backend
on a 2-core host); `GRIDLINE_LOAD_MESSAGES` raises the load test to the
issue's 5,000 webhooks (`GRIDLINE_LOAD_MESSAGES=5000 pytest tests/load`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from app.db import make_engine
from bench.servers import seed_city
from tests.pg import Cluster

# Households registered in the seeded city: one distinct sender per message.
RESIDENTS = max(300, int(os.environ.get("GRIDLINE_LOAD_MESSAGES", "0") or 0))
_PG_TEMPLATE = "gridline_load_template"


@pytest.fixture(scope="session")
def load_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("load-template") / "city.db"
    seed_city(f"sqlite:///{path}", residents=RESIDENTS)
    return path


def _admin_url(pg_cluster: Cluster | str) -> str:
    if isinstance(pg_cluster, str):
        return pg_cluster.rpartition("/")[0] + "/postgres"
    return pg_cluster.admin_url


@pytest.fixture(scope="session")
def load_pg_template(pg_cluster: Cluster | str) -> str:
    admin_url = _admin_url(pg_cluster)
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{_PG_TEMPLATE}"'))
        conn.execute(text(f'CREATE DATABASE "{_PG_TEMPLATE}"'))
    admin.dispose()
    seed_city(admin_url.rpartition("/")[0] + f"/{_PG_TEMPLATE}", residents=RESIDENTS)
    return admin_url


@pytest.fixture(params=["sqlite", "postgresql"])
def load_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database holding the seeded city, on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("load_sqlite_template")
        path = tmp_path / "gridline.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    if request.config.getoption("--sqlite-only"):
        pytest.skip("--sqlite-only")
    admin_url: str = request.getfixturevalue("load_pg_template")
    name = f"gridline_load_{os.getpid()}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_PG_TEMPLATE}"'))
    try:
        yield admin_url.rpartition("/")[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
