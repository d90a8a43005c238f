"""SQLite's write lock held elsewhere past its timeout (a long `gridline import`,
a backup holding a transaction): the webhook spools its message, the API and
the console answer 503 with Retry-After, none of them a 500 (SQLite only).

The lock is held by a connection of the test itself, released when the test
has its answers: no sleep, and the timeout is short so the test is quick.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.models.cases import CaseEvent
from app.models.messages import InboundMessage
from app.settings import Settings
from app.sqlite_writer import WriterConnection
from tests.api.conftest import Api
from tests.conftest import make_settings
from tests.factories import RESIDENT
from tests.helpers import signed_post, webhook_params


@pytest.fixture
def db_url(sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "gridline.db"
    shutil.copyfile(sqlite_template, path)
    yield f"sqlite:///{path}"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, sqlite_lock_timeout_seconds=0.2, spool_dir=tmp_path / "spool")


@pytest.fixture
def held(db_url: str) -> Iterator[WriterConnection]:
    """Hold the write lock (as another writer would) until the test is done."""
    conn = sqlite3.connect(
        db_url.removeprefix("sqlite:///"),
        factory=WriterConnection,
        timeout=5,
        check_same_thread=False,
        isolation_level=None,
    )
    yield conn
    conn.rollback()
    conn.close()


def test_a_lock_held_past_the_timeout_is_unavailable_not_an_error(
    client, rt, phone, make_key, browser, held, tmp_path
):
    phone(RESIDENT).text("楼道灯坏了")
    api = Api(client, make_key("DH"))
    case_id = api.get("/api/v1/cases").json()["items"][0]["id"]
    console = browser("DH-JF", "handler")
    with rt.sessions() as s:
        events_before = s.scalar(select(func.count()).select_from(CaseEvent))

    held.begin_immediate()
    comment = api.post(f"/api/v1/cases/{case_id}/comment", {"body": "已联系"})
    assert comment.status_code == 503 and comment.headers["Retry-After"]
    assert comment.json()["error"] == "unavailable"
    note = console.post(f"/console/cases/{case_id}/note", {"body": "已电话联系"})
    assert note.status_code == 503 and note.headers["Retry-After"]
    inbound = signed_post(client, "/sms/inbound", webhook_params(sender=RESIDENT, body="还没修"))
    assert inbound.status_code == 200  # kept in the spool, fsync'd
    assert any((tmp_path / "spool").iterdir())
    held.rollback()

    with rt.sessions() as s:  # nothing half-written
        assert s.scalar(select(func.count()).select_from(CaseEvent)) == events_before
        assert [m.body for m in s.scalars(select(InboundMessage))] == ["楼道灯坏了"]
    assert api.post(f"/api/v1/cases/{case_id}/comment", {"body": "已联系"}).status_code == 200
