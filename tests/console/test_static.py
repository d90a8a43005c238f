"""Nothing external: no CDN, no web fonts, no inline scripts, no links to other hosts."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from app.models.cases import Case
from tests.factories import RESIDENT

STATIC = Path(__file__).resolve().parents[2] / "app" / "console" / "static"
TEMPLATES = STATIC.parent / "templates"
ATTR_RE = re.compile(
    r"""\b(?:src|href|action|formaction|poster|data)\s*=\s*["']?([^"'\s>]+)""", re.I
)


def _external(url: str) -> bool:
    url = url.strip().lower()
    return url.startswith(("http:", "https:", "//", "ftp:")) or url.startswith("data:text/html")


def test_rendered_pages_link_only_to_this_site(browser, rt, phone):
    phone(RESIDENT).text("楼道灯坏了 见 https://example.com/x.png")
    with rt.sessions() as s:
        case_id = s.scalar(select(Case.id))
    console = browser("DH-JF", "admin")
    from fastapi.routing import APIRoute

    from app.console.router import router

    pages = ["/console/login", "/console", f"/console/cases/{case_id}", "/console/audit"]
    pages += [
        r.path
        for r in router.routes
        if isinstance(r, APIRoute) and "GET" in r.methods and "{" not in r.path
    ]
    checked = 0
    for path in dict.fromkeys(pages):
        r = console.get(path)
        if r.status_code != 200 or "text/html" not in r.headers.get("content-type", ""):
            continue
        checked += 1
        urls = ATTR_RE.findall(r.text)
        assert urls, path
        external = [u for u in urls if _external(u)]
        assert not external, (path, external)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text), f"inline script on {path}"
        assert "default-src 'self'" in r.headers["content-security-policy"], path
    assert checked >= 4


def test_static_files_load_nothing_from_elsewhere():
    files = [p for p in STATIC.rglob("*") if p.is_file()]
    assert any(p.suffix == ".css" for p in files) and any(p.suffix == ".js" for p in files)
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://", text), path
        assert "@font-face" not in text and "@import" not in text, path
    css = (STATIC / "console.css").read_text(encoding="utf-8")
    assert '"PingFang SC"' in css and '"Noto Sans CJK SC"' in css  # system CJK fonts


def test_templates_name_no_other_host():
    for path in TEMPLATES.glob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert not [u for u in ATTR_RE.findall(text) if _external(u)], path
