"""Fixtures of the escalation tests: the little city, and cases opened in bulk."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import select

from app.cases import changes as cases
from app.context import Ctx
from app.db import unit_of_work
from app.models.cases import Case
from app.runtime import Runtime
from tests.conftest import _truncate_all, make_settings
from tests.factories import City, make_city


@pytest.fixture
def city(rt: Runtime) -> City:
    with unit_of_work(rt.sessions) as session:
        return make_city(session)


@pytest.fixture
def pg_rt(pg_url: str, clock) -> Iterator[Runtime]:  # type: ignore[no-untyped-def]
    """A runtime on PostgreSQL only (for tests of many worker processes)."""
    runtime = Runtime.build(make_settings(pg_url), clock=clock)
    try:
        yield runtime
    finally:
        runtime.close()
        _truncate_all(pg_url)


def open_cases(rt: Runtime, count: int, *, now: datetime, grid_code: str = "DH-01") -> list[int]:
    """Open `count` routed cases in the grid at `now` (their deadline steps scheduled)."""
    ids = []
    for chunk in range(0, count, 50):
        ids += _open_chunk(rt, range(chunk, min(count, chunk + 50)), now=now, grid_code=grid_code)
    return ids


def _open_chunk(rt: Runtime, numbers: range, *, now: datetime, grid_code: str) -> list[int]:
    ids = []
    with unit_of_work(rt.sessions) as session:
        grid = cases.directory.region_by_code(session, grid_code)
        assert grid is not None
        ctx = Ctx(session=session, rt=rt, now=now)
        for i in numbers:
            code = str(100000 + i)
            case = Case(
                code=code,
                open_code=code,
                status="awaiting_address",
                level="grid",
                priority="normal",
                resident_phone=f"+86137{i:08d}",
                summary=f"第{i}件",
                created_at=now,
                updated_at=now,
            )
            session.add(case)
            session.flush()
            cases.route(ctx, case, grid, method="test", evidence={}, text=case.summary)
            ids.append(case.id)
    return ids


def case_ids(rt: Runtime) -> list[int]:
    with rt.sessions() as s:
        return list(s.scalars(select(Case.id).order_by(Case.id)))
