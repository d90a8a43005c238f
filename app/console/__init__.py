"""The office console (`/console`): server-rendered pages for office staff.

Interface for page modules (e.g. pages_map.py, pages_stats.py, pages_duty.py):

- Routes: define them on `router` (`from app.console import router`; prefix
  "/console", hidden from OpenAPI). Name the module `app/console/pages_*.py`:
  `install_console(app)` imports every such module before including the
  router, so nothing else needs registering. `install_console` is called by
  `app.web.create_app` after the API is installed.
- Who: `from app.console.auth import StaffDep, StaffContext, require_role, CsrfDep`.
  `ctx: StaffDep` is the signed-in staff member (a redirect, 303, to
  /console/login?next=… without a session). `ctx.staff` (id, username, role,
  office_code), `ctx.office` (app.offices.Office), `ctx.csrf_token`,
  `ctx.lang` ("zh"/"en"), `ctx.can("supervisor")`, `ctx.require("admin")`
  (403), `ctx.actor` (the app.cases.Actor for case services).
  `Depends(require_role("supervisor"))` gives the same context or 403.
  Every POST handler takes `ctx: CsrfDep` instead: it checks the form's
  `csrf_token` field and the Origin/Referer (403 with a reason).
- Visibility: only through app.offices (`case_filter(ctx.office)`,
  `region_filter(session, ctx.office)`, `visible_case`); anything outside the
  office's area is a 404, like the API.
- Database: `session: SessionDep` from app.deps (the request's one commit).
- Pages: `render(request, ctx, "map.html", nav_active="map", **values)` from
  app.console.render. Templates extend "base.html" and fill
  `{% block title %}` and `{% block content %}` (`{% block head %}` for extra
  <link>s, `{% block scripts %}` for <script src>s). All text through
  `{{ _("English msgid") }}` in templates, `_ = translator(ctx.lang)` in
  Python; add every msgid with its Chinese to
  app/console/locale/zh_CN/LC_MESSAGES/messages.po (a test fails on any
  msgid without one; `make messages` re-extracts). Filters: `localtime`
  (the configured zone), `mask` (masks phones in any text).
- Static files: app/console/static, served at /console/static/…; no CDN, no
  web fonts, no inline <script> (the CSP refuses it), no http(s) URLs to other
  hosts (a test walks the pages).
- Errors: raise app.errors domain errors (NotFound, Forbidden, …); under
  /console they render as an HTML page with the reason and their status.

May import app services, app.offices, models; nothing outside this package
imports it except app.web and app.cli_staff.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

router = APIRouter(prefix="/console", include_in_schema=False)

Handler = Callable[[Request, Any], Awaitable[Response] | Response]


def _is_console(request: Request) -> bool:
    path = request.url.path
    return path == "/console" or path.startswith("/console/")


def install_console(app: FastAPI) -> None:
    """Include the console's routes, its static files and its HTML error pages."""
    from app.console import render as render_module
    from app.console.auth import LoginRequired
    from app.errors import DomainError

    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("pages"):
            importlib.import_module(f"{__name__}.{module.name}")
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
    from app.apikeys import Unauthorized

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
