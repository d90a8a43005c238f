"""`install_console`: the console's routes, static files and HTML error pages on the app."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

Handler = Callable[[Request, Any], Awaitable[Response] | Response]


def _is_console(request: Request) -> bool:
    path = request.url.path
    return path == "/console" or path.startswith("/console/")


def install_console(app: FastAPI) -> None:
    """Include the console's routes, its static files and its HTML error pages."""
    from app.console import render as render_module
    from app.console.auth import LoginRequired
    from app.console.router import router
    from app.errors import DomainError

    # The page modules add their routes to the router as they are imported.
    package = importlib.import_module("app.console")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("pages"):
            importlib.import_module(f"app.console.{module.name}")
    app.include_router(router)
    app.mount(
        "/console/static",
        StaticFiles(directory=render_module.STATIC),
        name="console-static",
    )

    async def _login_required(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(exc.location, status_code=303)

    app.add_exception_handler(LoginRequired, _login_required)

    def _html_error(request: Request, exc: Exception) -> Response:
        from app.console.errors import error_page

        return error_page(request, exc)

    # Under /console, errors are HTML pages; elsewhere the handlers installed
    # before (JSON for the API and webhooks) answer as they did.
    from app.api.limits import RateLimited
    from app.directory.apikeys import Unauthorized

    for exc_class in (
        DomainError,
        RateLimited,
        Unauthorized,
        RequestValidationError,
        StarletteHTTPException,
    ):
        previous = app.exception_handlers.get(exc_class)

        def _make(previous: Handler | None) -> Callable[[Request, Exception], Awaitable[Response]]:
            async def _handler(request: Request, exc: Exception) -> Response:
                if _is_console(request):
                    return _html_error(request, exc)
                if previous is None:
                    raise exc
                result = previous(request, exc)
                if isinstance(result, Response):
                    return result
                return await result

            return _handler

        app.add_exception_handler(exc_class, _make(previous))
