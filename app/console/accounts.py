"""Staff accounts, their login sessions and the login throttle.

Passwords are hashed with argon2id. A session's cookie holds 256 random bits;
the database keeps only their SHA-256 (like API keys, a random token needs no
slow hash). Sessions end on logout, on `gridline staff revoke-sessions`, when
the account is disabled, after `IDLE` without a request and `ABSOLUTE` after
login, whichever comes first. Failed logins are rows, so every process counts
the same failures.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.directory.offices import Office, office_by_code
from app.errors import Conflict, DomainError, NotFound, Unprocessable
from app.models.console import STAFF_ROLES, LoginAttempt, Staff, StaffSession

IDLE = timedelta(hours=2)
ABSOLUTE = timedelta(hours=12)
# A session seen within this window is not written back on every request.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)

# Throttle: this many failures within the window lock the username (or the
# client IP) until the oldest of them leaves the window.
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_USERNAME = 5
MAX_FAILURES_PER_IP = 20

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,31}$")
MIN_PASSWORD = 10
# Actor names (`api:<office>:@<username>`) must fit Case.claimed_by / CaseEvent.actor.
MAX_ACTOR = 80

# argon2id with the RFC 9106 low-memory profile (64 MiB, t=3, p=4).
_hasher = PasswordHasher()
# Verified when the username is unknown, so that timing does not tell which
# names exist; made on first use (not at import), with the hasher's parameters.
_dummy: dict[int, str] = {}


def _dummy_hash() -> str:
    key = id(_hasher)
    if key not in _dummy:
        _dummy[key] = _hasher.hash("not a password of anyone")
    return _dummy[key]


class LoginThrottled(DomainError):
    status_code = 429
    code = "login_throttled"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class LoginFailed(DomainError):
    status_code = 401
    code = "login_failed"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def normalize_username(username: str) -> str:
    return username.strip().lower()


def check_role(role: str) -> str:
    if role not in STAFF_ROLES:
        raise Unprocessable(f"role must be one of {', '.join(STAFF_ROLES)}")
    return role


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Unprocessable(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > 1000:
        raise Unprocessable("the password is longer than 1000 characters")


def actor_name(office_code: str, username: str) -> str:
    """The actor a staff member's actions carry on case timelines.

    It is in the office actors' namespace (`api:<office>:…`, see
    app/offices.display_name), so that the platform treats it like the
    office's API: its name is the office's, nobody texts it.
    """
    return f"api:{office_code}:@{username}"


def create_staff(
    session: Session, *, username: str, office_code: str, role: str, password: str, now: datetime
) -> Staff:
    name = normalize_username(username)
    if not USERNAME_RE.match(name):
        raise Unprocessable(
            "the username must be 2-32 characters: a-z, 0-9, '_', '.', '-', "
            "starting with a letter or digit"
        )
    check_role(role)
    check_password(password)
    office = office_by_code(session, office_code)
    if len(actor_name(office.code, name)) > MAX_ACTOR:
        raise Unprocessable("office code and username together are too long")
    if session.scalar(select(Staff.id).where(Staff.username == name)) is not None:
        raise Conflict(f"the username {name!r} is taken")
    staff = Staff(
        username=name,
        password_hash=_hasher.hash(password),
        office_code=office.code,
        role=role,
        active=True,
        created_at=now,
    )
    session.add(staff)
    session.flush()
    return staff


def list_staff(session: Session) -> list[Staff]:
    return list(session.scalars(select(Staff).order_by(Staff.office_code, Staff.username)))


def staff_by_username(session: Session, username: str) -> Staff:
    staff = session.scalar(select(Staff).where(Staff.username == normalize_username(username)))
    if staff is None:
        raise NotFound(f"no staff member {username!r}")
    return staff


def revoke_sessions(session: Session, staff: Staff, *, now: datetime) -> int:
    """End every live session of the staff member; how many were live."""
    result = session.execute(
        update(StaffSession)
        .where(StaffSession.staff_id == staff.id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def disable_staff(session: Session, staff: Staff, *, now: datetime) -> None:
    staff.active = False
    staff.disabled_at = now
    revoke_sessions(session, staff, now=now)


# ---------------------------------------------------------------- throttle


def _failures_since(
    session: Session, column: InstrumentedAttribute[str], value: str, since: datetime
) -> list[datetime]:
    return list(
        session.scalars(
            select(LoginAttempt.at)
            .where(
                column == value,
                LoginAttempt.success.is_(False),
                LoginAttempt.at > since,
            )
            .order_by(LoginAttempt.at)
        )
    )


def check_throttle(session: Session, *, username: str, client_ip: str, now: datetime) -> None:
    """429 while the username or the client IP has too many recent failures.

    A successful login clears the username's count (not the IP's).
    """
    window_start = now - THROTTLE_WINDOW
    last_ok = session.scalar(
        select(func.max(LoginAttempt.at)).where(
            LoginAttempt.username == username, LoginAttempt.success.is_(True)
        )
    )
    since = max(window_start, last_ok) if last_ok is not None else window_start
    for failures, limit in (
        (
            _failures_since(session, LoginAttempt.username, username, since),
            MAX_FAILURES_PER_USERNAME,
        ),
        (
            _failures_since(session, LoginAttempt.client_ip, client_ip, window_start),
            MAX_FAILURES_PER_IP,
        ),
    ):
        if len(failures) >= limit:
            # Free again when enough of them have left the window.
            free_at = failures[len(failures) - limit] + THROTTLE_WINDOW
            wait = int((free_at - now).total_seconds()) + 1
            raise LoginThrottled(
                f"too many failed logins; try again in {wait} seconds", retry_after=wait
            )


def _note_attempt(
    session: Session, *, username: str, client_ip: str, now: datetime, success: bool
) -> None:
    session.add(LoginAttempt(username=username, client_ip=client_ip, at=now, success=success))
    # Old attempts count for nothing; keep the table small.
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - 4 * THROTTLE_WINDOW))


# ---------------------------------------------------------------- sessions


@dataclass(frozen=True)
class NewSession:
    token: str  # for the cookie; never stored
    staff: Staff
    row: StaffSession


def login(
    session: Session, *, username: str, password: str, client_ip: str, now: datetime
) -> NewSession | LoginFailed:
    """Check the password and open a session.

    A failure is returned, not raised: the caller commits the failed attempt
    (raising would roll it back and the throttle would never count it).
    Raises LoginThrottled before checking anything while throttled.
    """
    name = normalize_username(username)[:64]
    check_throttle(session, username=name, client_ip=client_ip, now=now)
    staff = session.scalar(select(Staff).where(Staff.username == name))
    try:
        _hasher.verify(staff.password_hash if staff is not None else _dummy_hash(), password)
        ok = staff is not None and staff.active
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    _note_attempt(session, username=name, client_ip=client_ip, now=now, success=ok)
    if not ok or staff is None:
        return LoginFailed("wrong username or password, or the account is disabled")
    if _hasher.check_needs_rehash(staff.password_hash):
        staff.password_hash = _hasher.hash(password)
    staff.last_login_at = now
    token = secrets.token_urlsafe(32)
    row = StaffSession(
        token_hash=hash_token(token),
        staff_id=staff.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + ABSOLUTE,
        client_ip=client_ip[:64],
    )
    session.add(row)
    session.flush()
    return NewSession(token=token, staff=staff, row=row)


@dataclass(frozen=True)
class LiveSession:
    row: StaffSession
    staff: Staff
    office: Office


def resume(session: Session, token: str | None, *, now: datetime) -> LiveSession | None:
    """The live session a cookie names, or None (unknown, revoked, expired, disabled)."""
    if not token or len(token) > 100:
        return None
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None:
        return None
    if now >= row.expires_at or now - row.last_seen_at >= IDLE:
        return None
    staff = session.get(Staff, row.staff_id)
    if staff is None or not staff.active:
        return None
    try:
        office = office_by_code(session, staff.office_code)
    except DomainError:  # the office's region was removed or changed level
        return None
    if now - row.last_seen_at >= LAST_SEEN_RESOLUTION:
        row.last_seen_at = now
    return LiveSession(row=row, staff=staff, office=office)


def logout(session: Session, token: str | None, *, now: datetime) -> None:
    if not token or len(token) > 100:
        return
    session.execute(
        update(StaffSession)
        .where(StaffSession.token_hash == hash_token(token), StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
