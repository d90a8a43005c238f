"""Engine and session construction, and the one unit of work.

Nothing is built at import time: `make_engine` is called by the app's lifespan,
the CLI command or the worker, and the caller disposes of it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from app.sqlite_writer import WriterConnection


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the webhook write while the worker reads; busy_timeout makes a
    # writer wait for the lock instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk when it returns (NORMAL would lose the last
    # commits at a power cut), so a webhook's 200 means its message survives
    # one.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # Take over transaction control from the sqlite3 module (see _sqlite_begin).
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Any) -> None:
    # BEGIN IMMEDIATE takes the write lock up front. With the default deferred
    # BEGIN, a transaction that read first and writes later fails with
    # SQLITE_BUSY when another writer got in between, and busy_timeout cannot
    # help it; serialising writers is the right trade on an embedded database.
    # A WriterConnection first queues for the lock without SQLite's sleeps
    # (app/sqlite_writer.py).
    raw = conn.connection.dbapi_connection
    if isinstance(raw, WriterConnection):
        try:
            raw.begin_immediate()
        except sqlite3.OperationalError as exc:
            # Raised in an event hook, SQLAlchemy would not wrap it: without this
            # a lock held past the timeout is a 500, not "unavailable, retry".
            raise sa_exc.OperationalError("BEGIN IMMEDIATE", None, exc) from exc
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship; the bare scheme would ask for psycopg2.
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        connect_args = {"timeout": 10, "factory": WriterConnection}
        connect_args.update(kwargs.pop("connect_args", {}))
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # pre-ping: a connection that died with a server restart is replaced at
    # checkout instead of failing the first request after it.
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """The one place a worker job or CLI command commits."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the database cannot be reached (down, restarting,
    refusing connections, pool exhausted), as opposed to a bad statement."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError)
