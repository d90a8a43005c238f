"""Logging in and out of the console."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from app.console.accounts import LoginFailed, LoginThrottled, login, logout
from app.console.auth import SESSION_COOKIE, CsrfDep, FormDep, check_origin, client_ip, request_lang
from app.console.render import render, translator
from app.console.router import router
from app.db import unit_of_work
from app.deps import RuntimeDep
from app.runtime import Runtime

COOKIE_PATH = "/console"


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a console path of this site only."""
    if (
        not value
        or not value.startswith("/console")
        or value.startswith("//")
        or "\\" in value
        or any(ord(ch) < 32 for ch in value)
    ):
        return "/console"
    return value


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, None, "login.html", next_url=safe_next(next), username="", message="")


@router.post("/login")
def login_submit(request: Request, rt: RuntimeDep, form: FormDep) -> Response:
    check_origin(request)
    username = form.get("username", "")[:64]
    password = form.get("password", "")
    next_url = safe_next(form.get("next"))
    _ = translator(request_lang(request))

    def _page(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return render(
            request,
            None,
            "login.html",
            status_code=status,
            headers=headers,
            next_url=next_url,
            username=username,
            message=message,
        )

    if not username or not password:
        return _page(400, _("Enter your username and password."))
    # Its own transaction, committed whatever the outcome: the throttle counts
    # the rows of failed attempts.
    try:
        with unit_of_work(rt.sessions) as session:
            outcome = login(
                session,
                username=username,
                password=password,
                client_ip=client_ip(request),
                now=rt.clock(),
            )
            token = outcome.token if not isinstance(outcome, LoginFailed) else ""
    except LoginThrottled as exc:
        minutes = max(1, (exc.retry_after + 58) // 60)
        return _page(
            429,
            _("Too many failed logins. Try again in %(minutes)d minutes.") % {"minutes": minutes},
            {"Retry-After": str(exc.retry_after)},
        )
    if isinstance(outcome, LoginFailed):
        return _page(401, _("Wrong username or password, or the account is disabled."))
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=_secure(request, rt),
        path=COOKIE_PATH,
    )
    return response


def _secure(request: Request, rt: Runtime) -> bool:
    """Whether the browser reaches us over HTTPS: this request's scheme, or, behind
    a proxy that ends TLS and forwards plain HTTP, the public URL's."""
    public = (rt.settings.public_url or "").lower()
    return request.url.scheme == "https" or public.startswith("https://")


@router.post("/logout")
def logout_submit(request: Request, ctx: CsrfDep, rt: RuntimeDep) -> Response:
    with unit_of_work(rt.sessions) as session:
        logout(session, request.cookies.get(SESSION_COOKIE), now=rt.clock())
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path=COOKIE_PATH, secure=_secure(request, rt), httponly=True
    )
    return response
