"""Rendering console pages: one Jinja2 environment, Babel catalogues, page chrome.

The catalogues are the `.po` files under app/console/locale; they are compiled
in memory when first used, so there is no build step and no compiled file to
go stale. msgids are English; `zh` (the default) must translate every one of
them (tests/console/test_i18n.py), `en` falls back to the msgid.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from functools import cache
from gettext import GNUTranslations, NullTranslations
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context

from app.console.auth import LANG_COOKIE, LANGS, request_lang
from sms.phones import mask_phones_in_text

if TYPE_CHECKING:
    from app.console.auth import StaffContext

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
LOCALE_DIR = HERE / "locale"
CATALOGUE_OF = {"zh": "zh_CN", "en": "en"}

# Pages carry personal data and load nothing from other sites. Inline scripts
# are refused; inline styles are allowed (SVG attributes of the map pages).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@cache
def translations(lang: str) -> GNUTranslations | NullTranslations:
    """The compiled catalogue of `lang` (zh or en)."""
    path = LOCALE_DIR / CATALOGUE_OF.get(lang, "zh_CN") / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=CATALOGUE_OF.get(lang, "zh_CN"))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return GNUTranslations(buffer)


def translator(lang: str) -> Callable[[str], str]:
    """`_ = translator(ctx.lang)`; then `_("Queue")` (extracted like template strings)."""
    return translations(lang).gettext


@pass_context
def _gettext(context: Context, message: str) -> str:
    return translations(context.get("lang", "zh")).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return translations(context.get("lang", "zh")).ngettext(singular, plural, n)


def _local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M", *, tz: Any = None) -> str:
    if value is None:
        return "—"
    return value.astimezone(tz).strftime(fmt) if tz is not None else value.strftime(fmt)


@pass_context
def _localtime(context: Context, value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return _local(value, fmt, tz=context.get("tz"))


def _mask(value: object) -> str:
    return mask_phones_in_text("" if value is None else str(value))


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(("html", "xml", "svg"), default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["localtime"] = _localtime
    env.filters["mask"] = _mask
    return env


def nav_items(ctx: StaffContext | None, lang: str) -> list[dict[str, str]]:
    _ = translator(lang)
    items = [
        {"key": "queue", "href": "/console", "label": _("Queue")},
        {"key": "map", "href": "/console/map", "label": _("Map")},
        {"key": "stats", "href": "/console/stats", "label": _("Statistics")},
        {"key": "duty", "href": "/console/duty", "label": _("Duty")},
    ]
    if ctx is not None and ctx.can("admin"):
        items.append({"key": "audit", "href": "/console/audit", "label": _("Audit log")})
    return items


def lang_url(request: Request, lang: str) -> str:
    """The current page in another language (the other query parameters kept)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    params.append(("lang", lang))
    return request.url.path + "?" + urlencode(params)


def render(
    request: Request,
    ctx: StaffContext | None,
    template_name: str,
    status_code: int = 200,
    *,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a console template with the page chrome's variables.

    Every template gets: `request`, `ctx`, `csrf_token`, `lang`, `office`,
    `staff`, `nav`, `nav_active` (default: none), `lang_urls`, `tz`, `now`,
    and `_()` / `ngettext()`, plus the filters `localtime` and `mask`.
    """
    lang = ctx.lang if ctx is not None else request_lang(request)
    rt = getattr(request.app.state, "runtime", None)
    values: dict[str, Any] = {
        "request": request,
        "ctx": ctx,
        "csrf_token": ctx.csrf_token if ctx is not None else "",
        "lang": lang,
        "office": ctx.office if ctx is not None else None,
        "staff": ctx.staff if ctx is not None else None,
        "nav": nav_items(ctx, lang),
        "nav_active": "",
        "lang_urls": {code: lang_url(request, code) for code in LANGS},
        "tz": rt.settings.tz if rt is not None else None,
        "now": rt.clock() if rt is not None else None,
    }
    values.update(context)
    html = environment().get_template(template_name).render(values)
    response = HTMLResponse(html, status_code=status_code, headers={**SECURITY_HEADERS})
    if headers:
        response.headers.update(headers)
    if request.query_params.get("lang") in LANGS and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax", path="/console"
        )
    return response
