"""Case codes: short, unique among live cases, retried on a taken candidate."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from app.cases.changes import assign_code
from app.db import unit_of_work
from app.models.cases import Case
from app.runtime import Runtime
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
