"""Refusals under /console, as HTML pages with their status and reason."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.console.auth import request_lang
from app.console.render import render, translator
from app.errors import DomainError


def error_page(request: Request, exc: Exception) -> Response:
    _ = translator(request_lang(request))
    headers: dict[str, str] = {}
    if isinstance(exc, DomainError):
        status, reason = exc.status_code, exc.message
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
    elif isinstance(exc, RequestValidationError):
        status = 422
        reason = "; ".join(
            ".".join(str(part) for part in problem.get("loc", ()))
            + ": "
            + str(problem.get("msg", ""))
            for problem in list(exc.errors())[:5]
        )
    elif isinstance(exc, StarletteHTTPException):
        status, reason = exc.status_code, str(exc.detail)
        headers.update(exc.headers or {})
    else:  # pragma: no cover - only the classes above are routed here
        status, reason = 500, "internal error"
    titles = {
        400: _("Bad request"),
        403: _("Not allowed"),
        404: _("Not found"),
        409: _("Not possible in the case's current state"),
        422: _("Invalid input"),
        429: _("Too many attempts"),
    }
    return render(
        request,
        None,
        "error.html",
        status_code=status,
        headers=headers,
        status=status,
        title=titles.get(status, _("Error")),
        reason=reason,
    )
