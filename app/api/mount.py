"""`install_api`: the office API's routers and error handlers on the app."""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.limits import RateLimited
from app.directory.apikeys import Unauthorized


def install_api(app: FastAPI) -> None:
    """Mount the office API routers on `app`."""
    from app.api import cases, directory, open311, stats, webhooks

    @app.exception_handler(Unauthorized)
    async def _unauthorized(_request: Request, exc: Unauthorized) -> JSONResponse:
        return JSONResponse(
            {"error": exc.code, "detail": exc.message},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The office API answers every refusal in one shape (ErrorOut); the rest
        # of the app keeps FastAPI's.
        if not request.url.path.startswith("/api/"):
            return await request_validation_exception_handler(request, exc)
        problems = list(exc.errors())
        detail = "; ".join(
            ".".join(str(part) for part in p.get("loc", ())) + ": " + str(p.get("msg", ""))
            for p in problems[:5]
        )
        return JSONResponse(
            {"error": "invalid_request", "detail": detail, "errors": jsonable_encoder(problems)},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI's own refusals (a body that is not JSON, an unknown path) in
        # the office API's one shape.
        if not request.url.path.startswith("/api/"):
            return await http_exception_handler(request, exc)
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
        return JSONResponse(
            {"error": code, "detail": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RateLimited)
    async def _rate_limited(_request: Request, exc: RateLimited) -> JSONResponse:
        return JSONResponse(
            {"error": exc.code, "detail": exc.message},
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )

    app.include_router(cases.router)
    app.include_router(directory.router)
    app.include_router(stats.router)
    app.include_router(webhooks.router)
    app.include_router(open311.router)
