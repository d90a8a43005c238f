"""A per-transaction memo for read-mostly lookups, used when many steps fire in one.

`app.deadlines.scheduler` fires a batch of due steps in one transaction. Ten thousand
cases falling due at once would otherwise each ask again for the same grid
team, the same town office on duty and the same webhook endpoints. The memo
lives in `session.info` and dies with the session; it is switched on only by
code that owns the whole transaction (`enable`), so ordinary requests never
see a cached answer. Writers of memoised facts inside such a transaction keep
the memo in step (see `cases.add_participants`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import JSON, Connection, Table, insert
from sqlalchemy.orm import Session

T = TypeVar("T")

_KEY = "gridline.memo"


def enable(session: Session) -> dict[Hashable, Any]:
    return session.info.setdefault(_KEY, {})


def table_of(session: Session) -> dict[Hashable, Any] | None:
    """The session's memo, or None when memoising is off."""
    found: dict[Hashable, Any] | None = session.info.get(_KEY)
    return found


def cached(session: Session, key: Hashable, load: Callable[[], T]) -> T:
    """`load()`, remembered under `key` for the rest of the transaction when memoising."""
    found = table_of(session)
    if found is None:
        return load()
    if key not in found:
        found[key] = load()
    value: T = found[key]
    return value


def defer_insert(session: Session, table: Any, row: dict[str, Any]) -> bool:
    """Queue `row` for one multi-row INSERT at the end of a batch; False when
    memoising is off (the caller then adds the row the ordinary way)."""
    found = table_of(session)
    if found is None:
        return False
    found.setdefault(("deferred", table), []).append(row)
    return True


def deferred(session: Session, table: Any) -> list[dict[str, Any]]:
    """The rows of `table` queued by `defer_insert` and not written yet (readers
    that count rows, like the loop guards, must count these too)."""
    found = table_of(session)
    if found is None:
        return []
    rows: list[dict[str, Any]] = found.get(("deferred", table), [])
    return rows


def flush_deferred(session: Session) -> int:
    """Write the rows `defer_insert` queued, one executemany per table; their count."""
    found = table_of(session)
    if found is None:
        return 0
    written = 0
    for key in [k for k in found if isinstance(k, tuple) and k[0] == "deferred"]:
        rows = found.pop(key)
        if not rows:
            continue
        conn = session.connection()
        if conn.dialect.name == "postgresql":
            _copy_rows(conn, key[1].__table__, rows)
        else:
            conn.execute(insert(key[1]), rows)
        written += len(rows)
    return written


def _copy_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL's COPY: thousands of rows in one round trip, no SQL to parse.
    Column defaults are applied as an INSERT would."""
    given = {name for row in rows for name in row}
    # Columns given, or with a Python-side default; the others keep their server default.
    columns = [c for c in table.columns if c.name in given or c.default is not None]
    names = ", ".join(f'"{c.name}"' for c in columns)
    values = []
    for row in rows:
        out = []
        for column in columns:
            default: Any = column.default
            if column.name in row:
                value = row[column.name]
            elif default is not None and default.is_scalar:
                value = default.arg
            elif default is not None and default.is_callable:
                value = default.arg(None)  # a context-free default (utcnow)
            else:
                value = None
            if value is not None and isinstance(column.type, JSON):
                value = json.dumps(value, ensure_ascii=False)
            out.append(value)
        values.append(out)
    dbapi: Any = conn.connection.dbapi_connection
    with dbapi.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for out in values:
            copy.write_row(out)
