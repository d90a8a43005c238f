"""Who is asking: the staff member from the session cookie, roles, CSRF, language."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request

from app.console.accounts import actor_name, resume
from app.context import Actor
from app.db import unit_of_work
from app.deps import RuntimeDep
from app.directory.offices import Office
from app.errors import BadRequest, Forbidden
from app.models.console import STAFF_ROLES
from app.settings import Settings

SESSION_COOKIE = "gl_console"
LANG_COOKIE = "gl_lang"
LANGS = ("zh", "en")
DEFAULT_LANG = "zh"


class LoginRequired(Exception):
    """No live session: the console answers with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url

    @property
    def location(self) -> str:
        return "/console/login?next=" + quote(self.next_url, safe="/")


class CsrfRefused(Forbidden):
    code = "csrf_refused"


@dataclass(frozen=True)
class StaffInfo:
    """The signed-in staff member (a detached copy of the Staff row)."""

    id: int
    username: str
    role: str
    office_code: str


@dataclass(frozen=True)
class StaffContext:
    staff: StaffInfo
    office: Office
    csrf_token: str
    lang: str
    session_id: int
    client_ip: str

    @property
    def role_rank(self) -> int:
        return STAFF_ROLES.index(self.staff.role)

    def can(self, role: str) -> bool:
        return self.role_rank >= STAFF_ROLES.index(role)

    def require(self, role: str) -> None:
        """403 unless the staff member's role is at least `role`."""
        if not self.can(role):
            raise Forbidden(f"this needs the {role} role; you are {self.staff.role}")

    @property
    def actor(self) -> Actor:
        """Who the case timelines say did it."""
        return Actor(name=actor_name(self.office.code, self.staff.username), channel="console")


def request_lang(request: Request) -> str:
    """`?lang=` first, then the cookie, else Chinese."""
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked
    cookie = request.cookies.get(LANG_COOKIE)
    return cookie if cookie in LANGS else DEFAULT_LANG


def client_ip(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.runtime.settings
    return settings


def current_staff(request: Request, rt: RuntimeDep) -> StaffContext:
    """The staff member of the session cookie; a redirect to the login page without one.

    Its own short transaction (it may touch `last_seen_at`), committed before
    the request's work, like the API's key check.
    """
    token = request.cookies.get(SESSION_COOKIE)
    with unit_of_work(rt.sessions) as session:
        live = resume(session, token, now=rt.clock())
        if live is not None:
            ctx = StaffContext(
                staff=StaffInfo(
                    id=live.staff.id,
                    username=live.staff.username,
                    role=live.staff.role,
                    office_code=live.staff.office_code,
                ),
                office=live.office,
                csrf_token=live.row.csrf_token,
                lang=request_lang(request),
                session_id=live.row.id,
                client_ip=client_ip(request),
            )
    if live is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        # After logging in the browser comes back with a GET: a form's target
        # would answer 405, so a POST goes back to the queue.
        raise LoginRequired(target if request.method == "GET" else "/console")
    return ctx


StaffDep = Annotated[StaffContext, Depends(current_staff)]


def require_role(min_role: str) -> Callable[[StaffContext], StaffContext]:
    """A dependency: the staff member, or 403 below `min_role`.

    viewer < handler < supervisor < admin.
    """
    if min_role not in STAFF_ROLES:
        raise ValueError(f"unknown role {min_role!r}")

    def _dependency(ctx: StaffDep) -> StaffContext:
        ctx.require(min_role)
        return ctx

    return _dependency


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_origin(request: Request) -> None:
    """403 unless the Origin (or, without one, the Referer) is this site.

    This site is the host the request was sent to, or GRIDLINE_PUBLIC_URL
    (behind a proxy the two differ).
    """
    allowed = {f"{request.url.scheme}://{request.url.netloc}".lower()}
    public = _settings(request).public_url
    if public:
        public_origin = _origin_of(public)
        if public_origin:
            allowed.add(public_origin)
    origin = request.headers.get("origin")
    if origin and origin != "null":
        if origin.lower() not in allowed:
            raise CsrfRefused(f"cross-site request refused: Origin {origin} is not this site")
        return
    referer = request.headers.get("referer")
    if referer:
        if _origin_of(referer) not in allowed:
            raise CsrfRefused("cross-site request refused: the Referer is not this site")
        return
    raise CsrfRefused("request refused: neither Origin nor Referer says it came from this site")


@dataclass(frozen=True)
class PostedForm:
    """The text fields of a POSTed form."""

    fields: dict[str, list[str]]

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))


async def posted_form(request: Request) -> PostedForm:
    """The POSTed form (read once per request; files are refused)."""
    try:
        form = await request.form(max_files=0, max_fields=2000)
    except Exception as exc:  # a malformed body, a file, too many fields
        detail = str(getattr(exc, "detail", "") or exc)[:200]
        raise BadRequest(f"the form could not be read: {detail}") from exc
    fields: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            raise BadRequest("files are not accepted")
        if "\x00" in value:
            raise BadRequest("NUL byte in form data")
        fields.setdefault(key, []).append(value)
    return PostedForm(fields)


FormDep = Annotated[PostedForm, Depends(posted_form)]


def csrf_staff(request: Request, ctx: StaffDep, form: FormDep) -> StaffContext:
    """For every POST: the staff member, once the form's token and the Origin check out."""
    check_origin(request)
    token = form.get("csrf_token")
    if not token or not hmac.compare_digest(token.encode(), ctx.csrf_token.encode()):
        raise CsrfRefused("request refused: the form's security token is missing or stale")
    return ctx


CsrfDep = Annotated[StaffContext, Depends(csrf_staff)]
