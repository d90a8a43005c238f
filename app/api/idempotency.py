"""`Idempotency-Key` on POST actions: the same key replays the first answer.

The key is claimed by inserting its row *before* the action runs, in the
request's transaction. A concurrent request with the same key blocks on the
unique index (PostgreSQL) or on the write lock (SQLite's BEGIN IMMEDIATE)
until the first commits, then finds the stored answer and replays it. An
action that fails rolls the row back with everything else, so only
successful answers are kept and a retry after a 409 runs again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import BadRequest, Unprocessable
from app.models.offices import IdempotentAnswer

MAX_KEY_LENGTH = 200
# Printable ASCII, not starting with a space, 1–200 characters (checked by FastAPI: 422).
KEY_PATTERN = r"^[\x21-\x7e][\x20-\x7e]{0,199}$"


class KeyReused(Unprocessable):
    code = "idempotency_key_reused"


@dataclass
class Claimed:
    """A key taken for this request: fill it with the answer."""

    row: IdempotentAnswer

    def keep(self, status_code: int, body: dict[str, Any]) -> None:
        self.row.status_code = status_code
        self.row.body = body


def fingerprint(method: str, path: str, body: str) -> str:
    return hashlib.sha256(f"{method}\n{path}\n{body}".encode()).hexdigest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise BadRequest(f"Idempotency-Key must be 1–{MAX_KEY_LENGTH} printable ASCII chars")
    return key


def claim_key(
    session: Session, *, office_code: str, key: str, fingerprint: str
) -> Claimed | IdempotentAnswer:
    """Take `key` for this request, or return the answer stored under it."""
    key = check_key(key)
    row = IdempotentAnswer(
        office_code=office_code, key=key, fingerprint=fingerprint, status_code=0, body=None
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
        return Claimed(row)
    except IntegrityError:
        pass
    stored = session.scalar(
        select(IdempotentAnswer).where(
            IdempotentAnswer.office_code == office_code, IdempotentAnswer.key == key
        )
    )
    assert stored is not None  # the row that collided is committed
    if stored.fingerprint != fingerprint:
        raise KeyReused("this Idempotency-Key was used for a different request")
    return stored
