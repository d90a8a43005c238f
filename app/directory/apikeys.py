"""API keys of the offices: random, shown once, stored as a SHA-256 hash.

A key reads `gl_<8 hex>_<43 url-safe chars>`. Its first part (`gl_1a2b3c4d`)
is the visible prefix: it is stored in clear, finds the row and names the key
in listings and on case timelines. The whole key is hashed; the hash is
compared in constant time. 256 random bits need no slow hash: there is nothing
to guess a dictionary from.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.directory.offices import Office, office_by_code
from app.errors import DomainError, NotFound
from app.models.offices import API_SCOPES, ApiKey

KEY_PREFIX = "gl_"
# A key used within this window is not written back on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class BadScope(DomainError):
    status_code = 422
    code = "bad_scope"


@dataclass(frozen=True)
class Caller:
    """Who is calling: the office and scope come from the key alone."""

    office: Office
    scope: str
    prefix: str

    @property
    def actor_name(self) -> str:
        return f"api:{self.office.code}:{self.prefix}"

    @property
    def can_write(self) -> bool:
        return self.scope == "write"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _split(key: str) -> str | None:
    """The visible prefix of a well-formed key, else None."""
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    head, sep, _ = key[len(KEY_PREFIX) :].partition("_")
    if not sep or len(head) != 8:
        return None
    return KEY_PREFIX + head


def create_key(
    session: Session, *, office_code: str, scope: str, now: datetime
) -> tuple[ApiKey, str]:
    """Store a new key for the office; returns the row and the key (never stored)."""
    if scope not in API_SCOPES:
        raise BadScope(f"scope must be one of {', '.join(API_SCOPES)}")
    office = office_by_code(session, office_code)
    while True:
        prefix = KEY_PREFIX + secrets.token_hex(4)
        if session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is None:
            break
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        prefix=prefix,
        key_hash=hash_key(key),
        office_code=office.code,
        scope=scope,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row, key


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.office_code, ApiKey.id)))


def revoke_key(session: Session, *, prefix: str, now: datetime) -> ApiKey:
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None:
        raise NotFound(f"no API key {prefix}")
    if row.revoked_at is None:
        row.revoked_at = now
    return row


def authenticate(session: Session, key: str | None, *, now: datetime) -> Caller:
    """The caller a bearer key stands for; 401 for a missing, unknown or revoked key."""
    if not key:
        raise Unauthorized("an API key is required: Authorization: Bearer <key>")
    prefix = _split(key)
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix)) if prefix else None
    # Hash and compare even when no row matched, so timing says nothing.
    expected = row.key_hash if row is not None else hash_key("")
    matches = hmac.compare_digest(hash_key(key), expected)
    if row is None or not matches or row.revoked_at is not None:
        raise Unauthorized("invalid or revoked API key")
    try:
        office = office_by_code(session, row.office_code)
    except DomainError as exc:  # the office's region was removed or changed level
        raise Unauthorized("the key's office no longer exists") from exc
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
    return Caller(office=office, scope=row.scope, prefix=row.prefix)
