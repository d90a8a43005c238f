"""Limits of the office API: requests per key per minute, SMS per office per day.

Both are counters in the database, so every server process shares them. The
request counter is committed in its own short transaction before the request's
work (a request that then fails still counts); the SMS counter is charged in
the action's transaction (an action that fails sends nothing and charges
nothing).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.errors import DomainError
from app.models.offices import ApiRateWindow, OfficeSmsUsage
from app.runtime import Runtime

WINDOW_SECONDS = 60


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class SmsQuotaExceeded(RateLimited):
    code = "sms_quota_exceeded"


def _increment(session: Session, model: Any, keys: dict[str, Any], by: int) -> int:
    """Add `by` to the counter row named by `keys` (creating it); the new count."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(model)
        .values(**keys, count=by)
        .on_conflict_do_update(index_elements=list(keys), set_={"count": model.count + by})
        .returning(model.count)
    )
    return int(session.execute(stmt).scalar_one())


def count_request(session: Session, *, prefix: str, now: datetime, limit: int) -> None:
    """Count one request of the key; 429 past `limit` in the current minute."""
    seconds = int(now.timestamp())
    window = seconds // WINDOW_SECONDS
    count = _increment(session, ApiRateWindow, {"prefix": prefix, "window": window}, 1)
    if count == 1:  # a new window: the key's older ones are of no more use
        session.execute(
            delete(ApiRateWindow).where(
                ApiRateWindow.prefix == prefix, ApiRateWindow.window < window
            )
        )
    if count > limit:
        retry = (window + 1) * WINDOW_SECONDS - seconds
        raise RateLimited(f"more than {limit} requests a minute", retry_after=retry)


def charge_sms(
    session: Session, rt: Runtime, *, office_code: str, now: datetime, count: int = 1
) -> None:
    """Charge SMS to the office's daily quota; 429 (nothing sent) when it is spent."""
    local = now.astimezone(rt.settings.tz)
    quota = rt.settings.api_sms_daily_quota
    used = _increment(
        session,
        OfficeSmsUsage,
        {"office_code": office_code, "day": local.date().isoformat()},
        count,
    )
    if used > quota:
        midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        raise SmsQuotaExceeded(
            f"the office's {quota} SMS for today are spent",
            retry_after=int((midnight - local).total_seconds()) + 1,
        )
