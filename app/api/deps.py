"""Dependencies of the office API: the session, the caller from the key, scopes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from app.api.limits import count_request
from app.db import unit_of_work
from app.deps import RuntimeDep
from app.directory.apikeys import Caller, authenticate
from app.errors import Forbidden
from app.runtime import Runtime


class ErrorOut(BaseModel):
    """Every refusal of the API: a machine-readable code and a human reason."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": "conflict", "detail": "case #4821 is closed"}]}
    )

    error: str = Field(description="unauthorized, forbidden, not_found, conflict, …")
    detail: str
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="with `invalid_request`: each invalid parameter or field"
    )


bearer = HTTPBearer(
    auto_error=False,
    description="An office API key from `gridline apikey create`: `Authorization: Bearer gl_…`.",
)


def resolve_caller(rt: Runtime, key: str | None) -> Caller:
    """Authenticate the key and count the request against its rate limit.

    Its own short transaction, committed before the request's work: a request
    that fails afterwards still counts, and SQLite's write lock is not held
    across two sessions at once.
    """
    now = rt.clock()
    with unit_of_work(rt.sessions) as session:
        caller = authenticate(session, key, now=now)
        count_request(
            session, prefix=caller.prefix, now=now, limit=rt.settings.api_rate_limit_per_minute
        )
    return caller


def get_caller(
    rt: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    return resolve_caller(rt, credentials.credentials if credentials is not None else None)


CallerDep = Annotated[Caller, Depends(get_caller)]


def get_writer(caller: CallerDep) -> Caller:
    if not caller.can_write:
        raise Forbidden("this API key is read-only; actions need a write key")
    return caller


WriterDep = Annotated[Caller, Depends(get_writer)]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("No API key, or an unknown or revoked one."),
    422: _error(
        "A parameter or the body is invalid (`invalid_request`, each problem in `errors`), "
        "or refused on its meaning (an unknown grid, a phone that is not one, …)."
    ),
    429: {
        **_error("Too many requests for this key this minute (see `Retry-After`)."),
        "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
    },
}
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    404: _error("Not found, or not in the office's area (the same answer either way)."),
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **READ_ERRORS,
    400: _error("The body is not JSON."),
    403: _error("The API key is read-only."),
    409: _error("The case's state does not allow this action."),
    429: {
        **_error(
            "Too many requests this minute, or (`message`, `assign`) the office's daily "
            "SMS quota is spent (`sms_quota_exceeded`); see `Retry-After`."
        ),
        "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
    },
    422: _error(
        "The body or a parameter is invalid (`invalid_request`), refused on its meaning, "
        "or the Idempotency-Key was used for another request (`idempotency_key_reused`)."
    ),
}
