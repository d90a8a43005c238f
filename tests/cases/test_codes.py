"""Case codes: short, unique among live cases, retried on a taken candidate."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from app.cases.changes import CODE_WIDTH_TTL, assign_code, code_width
from app.context import Ctx
from app.db import unit_of_work
from app.models.cases import Case
from app.runtime import Runtime
from tests.conftest import Clock, _truncate_all, make_settings
from tests.helpers import Scripted


def new_case(session: Session, phone: str) -> Case:
    case = Case(code="", status="open", resident_phone=phone, summary="")
    session.add(case)
    return case


def test_a_taken_code_is_never_given_again_while_its_case_is_live(rt: Runtime) -> None:
    with unit_of_work(rt.sessions) as session:
        first = new_case(session, "+8613700000001")
        assign_code(session, first, rng=Scripted([1234] * 8))
        assert first.open_code == "1234"
    with unit_of_work(rt.sessions) as session:
        # Eight candidates, all the taken one: another round, which finds 5678.
        second = new_case(session, "+8613700000002")
        assign_code(session, second, rng=Scripted([1234] * 8 + [5678] * 8))
        assert second.open_code == "5678"
    with rt.sessions() as s:
        codes = sorted(s.scalars(select(Case.open_code)))
        assert codes == ["1234", "5678"]


@contextlib.contextmanager
def statements(session: Session) -> Iterator[list[str]]:
    """The first word of each SQL statement run on the session's engine meanwhile."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement.split()[0].upper())

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_postgresql_writes_the_code_in_a_savepoint(rt: Runtime) -> None:
    """On PostgreSQL a case's code is written in a savepoint, retried on a
    collision; on SQLite (the write lock held) the INSERT carries it."""
    with unit_of_work(rt.sessions) as session, statements(session) as seen:
        assign_code(session, new_case(session, "+8613700000199"))
    if rt.engine.dialect.name == "postgresql":
        assert seen.count("SAVEPOINT") == 1 and seen.count("UPDATE") == 1
    else:
        assert "SAVEPOINT" not in seen and "UPDATE" not in seen


def test_on_postgresql_a_code_another_worker_takes_first_is_retried(pg_url: str) -> None:
    """Two workers pick the same free code at once: the second's write waits
    on the first's uncommitted row, fails on the unique constraint when it
    commits, and the second case gets the next candidate."""
    rt = Runtime.build(make_settings(pg_url))
    try:
        first_session = rt.sessions()
        first = new_case(first_session, "+8613700000001")
        assign_code(first_session, first, rng=Scripted([1234] * 8))  # inserted, not committed
        result: dict[str, Any] = {}

        def second_worker() -> None:
            try:
                with unit_of_work(rt.sessions) as session:
                    second = new_case(session, "+8613700000002")
                    assign_code(session, second, rng=Scripted([1234] * 8 + [5678] * 8))
                    result["code"] = second.open_code
            except Exception as exc:  # reported to the test below
                result["error"] = exc

        worker = threading.Thread(target=second_worker)
        worker.start()
        with rt.engine.connect() as watcher:
            # The second write is waiting for the first transaction's row.
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE 'UPDATE cases%'"
            )
            while watcher.execute(waiting).scalar() == 0 and worker.is_alive():
                watcher.rollback()
        first_session.commit()
        first_session.close()
        worker.join(30)
        assert "error" not in result, result.get("error")
        assert result["code"] == "5678"
        with rt.sessions() as s:
            rows = sorted((c.resident_phone, c.open_code) for c in s.scalars(select(Case)))
        assert rows == [("+8613700000001", "1234"), ("+8613700000002", "5678")]
    finally:
        rt.close()
        _truncate_all(pg_url)


def test_the_code_width_is_counted_at_most_once_a_minute(rt: Runtime, clock: Clock) -> None:
    def counts(at: datetime) -> int:
        with unit_of_work(rt.sessions) as session, statements(session) as seen:
            assert code_width(Ctx(session=session, rt=rt, now=at)) == 4
        return seen.count("SELECT")

    assert counts(clock.now) == 1
    assert counts(clock.now + CODE_WIDTH_TTL / 2) == 0
    assert counts(clock.now + CODE_WIDTH_TTL) == 1
