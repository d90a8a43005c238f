"""The worker's next-batch query (app/inbound/queue.py) stays cheap however its
database's statistics stand: the work it does grows with the batch and the
backlog, never with the backlog squared, nor with the messages processed long
ago. Measured as work done (rows a PostgreSQL plan touched, SQLite virtual
machine steps), not as time."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, insert, text
from sqlalchemy.dialects.postgresql import psycopg

from app.db import make_engine
from app.inbound import queue as inbound
from app.models.messages import InboundMessage
from tests.conftest import _truncate_all
from tests.helpers import new_sid

BATCH = 20
NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def rows(
    start: int, count: int, *, status: str, senders: int | None = None
) -> list[dict[str, Any]]:
    """`count` messages from `senders` phones in turn (default: one each)."""
    every = senders or count
    return [
        {
            "message_sid": new_sid(),
            "from_phone": f"+86138{(start + n % every):08d}",
            "to_phone": None,
            "body": "楼道灯坏了",
            "params": {},
            "received_at": NOW,
            "status": status,
        }
        for n in range(count)
    ]


def rows_touched(plan: dict[str, Any]) -> float:
    """Rows a node and those under it produced or filtered out, over all their loops."""
    loops = plan.get("Actual Loops", 1)
    here = sum(
        plan.get(key, 0)
        for key in (
            "Actual Rows",
            "Rows Removed by Filter",
            "Rows Removed by Join Filter",
            "Rows Removed by Index Recheck",
        )
    )
    return here * loops + sum(rows_touched(child) for child in plan.get("Plans", []))


@pytest.fixture
def pg(pg_url: str) -> Iterator[Connection]:
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()
        _truncate_all(pg_url)


def explain(pg: Connection, *, generic: bool) -> dict[str, Any]:
    """The next-batch query run under EXPLAIN ANALYZE; `generic`: as a prepared
    statement's generic plan, which psycopg's statements get once run five
    times, planned without the parameters' values."""
    compiled = inbound._next_batch_query(BATCH).compile(dialect=psycopg.dialect())
    names: list[str] = []

    def positional(match: re.Match[str]) -> str:
        names.append(match.group(1))
        return f"${len(names)}"

    sql = re.sub(r"%\((\w+)\)s", positional, str(compiled))
    values = ", ".join(
        str(v) if isinstance(v, int) else "'{}'".format(str(v).replace("'", "''"))
        for v in (compiled.params[n] for n in names)
    )
    pg.execute(text(f"PREPARE next_batch AS {sql}"))
    try:
        mode = "force_generic_plan" if generic else "force_custom_plan"
        pg.execute(text(f"SET LOCAL plan_cache_mode = {mode}"))
        explained = pg.scalar(text(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE next_batch({values})"))
    finally:
        pg.execute(text("DEALLOCATE next_batch"))
    return (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]


@pytest.mark.parametrize("generic", [False, True], ids=["custom-plan", "generic-plan"])
@pytest.mark.parametrize("backlog", [200, 400])
def test_on_postgresql_a_burst_after_the_statistics_costs_linear_work(
    pg: Connection, backlog: int, generic: bool
) -> None:
    """The statistics were taken when every message had been processed (as
    autovacuum leaves a busy table before a burst); then `backlog` messages
    arrive. The old query (NOT EXISTS an earlier waiting message of the same
    sender) was planned as an anti-join looping over the whole backlog for
    each waiting row: about backlog² rows (80,460 at 200, 320,860 at 400).
    Nor may it read the history: a generic plan can use the partial indexes
    only because the query names 'received' in its text."""
    with pg.begin():  # one transaction: autovacuum cannot analyze in between
        pg.execute(insert(InboundMessage), rows(0, 5000, status="processed"))
        pg.execute(text("ANALYZE inbound_messages"))
        pg.execute(insert(InboundMessage), rows(10_000, backlog, status="received"))
        plan = explain(pg, generic=generic)
        assert plan["Actual Rows"] == BATCH
        assert rows_touched(plan) <= 10 * backlog, json.dumps(plan, indent=1)


def test_on_postgresql_a_sender_s_later_messages_wait_under_stale_statistics(
    pg: Connection,
) -> None:
    """The same plan keeps the rule: one message per sender, its oldest."""
    with pg.begin():
        pg.execute(insert(InboundMessage), rows(0, 50, status="processed"))
        pg.execute(text("ANALYZE inbound_messages"))
        pg.execute(insert(InboundMessage), rows(1000, 300, status="received", senders=7))
        taken = pg.execute(inbound._next_batch_query(BATCH)).all()
        phones = [m.from_phone for m in taken]
        assert len(taken) == len(set(phones)) == 7
        first_ids = pg.execute(
            text(
                "SELECT min(id) FROM inbound_messages WHERE status = 'received' GROUP BY from_phone"
            )
        ).scalars()
        assert sorted(m.id for m in taken) == sorted(first_ids)


def vm_steps(conn: Connection) -> int:
    """SQLite virtual machine instructions (in hundreds) the next-batch query runs."""
    raw = conn.connection.driver_connection
    assert raw is not None
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0  # go on

    raw.set_progress_handler(count, 100)
    try:
        found = conn.execute(inbound._next_batch_query(BATCH)).all()
    finally:
        raw.set_progress_handler(None, 0)
    assert len(found) == BATCH
    return steps[0]


def test_on_sqlite_the_query_reads_the_backlog_not_the_history(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """Ten times the messages processed in the past leave the work to find the
    next batch the same: it reads the waiting messages' partial indexes."""
    path = tmp_path / "gridline.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            conn.execute(insert(InboundMessage), rows(0, 500, status="processed"))
            conn.execute(insert(InboundMessage), rows(100_000, 100, status="received", senders=40))
            conn.commit()
            few = vm_steps(conn)
            conn.execute(insert(InboundMessage), rows(10_000, 5000, status="processed"))
            conn.commit()
            many = vm_steps(conn)
        assert many <= few * 1.2 + 2, (few, many)
    finally:
        engine.dispose()
