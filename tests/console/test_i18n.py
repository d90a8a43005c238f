"""Languages: Chinese by default, English on request; every msgid has its Chinese."""

from __future__ import annotations

import re

from babel.messages.pofile import read_po

from app.console.messages import extract, po_path
from tests.console.conftest import Console

PLACEHOLDER_RE = re.compile(r"%\((\w+)\)[sd]|\{(\w+)\}")


def _placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER_RE.findall(text)}


def test_every_msgid_has_a_chinese_translation():
    """Extracted from the sources now (not from a possibly stale .pot)."""
    extracted = {message.id for message in extract() if message.id}
    assert len(extracted) > 100
    with po_path("zh_CN").open("rb") as handle:
        catalog = read_po(handle, locale="zh_CN")
    translated = {m.id: m.string for m in catalog if m.id}
    missing = sorted(m for m in extracted if not translated.get(m))  # type: ignore[arg-type]
    assert not missing, (
        "msgids without Chinese (run `python -m app.console.messages`, then translate "
        f"them in {po_path('zh_CN')}): {missing}"
    )
    wrong = [
        m
        for m in extracted
        if isinstance(m, str) and _placeholders(m) != _placeholders(str(translated[m]))
    ]
    assert not wrong, f"translations whose placeholders differ from the msgid: {wrong}"


def test_catalogues_parse_without_errors():
    for locale in ("zh_CN", "en"):
        with po_path(locale).open("rb") as handle:
            catalog = read_po(handle, locale=locale)
        problems = [(m.id, errors) for m, errors in catalog.check() if errors]
        assert not problems, (locale, problems)


def test_chinese_by_default_english_by_parameter_then_cookie(app, browser):
    anonymous = Console(app)
    page = anonymous.get("/console/login")
    assert '<html lang="zh-CN">' in page.text and "用户名" in page.text
    english = anonymous.get("/console/login", lang="en")
    assert '<html lang="en">' in english.text and "Username" in english.text
    assert "gl_lang=en" in english.headers["set-cookie"]
    assert "Username" in anonymous.get("/console/login").text  # the cookie remembers
    assert "用户名" in anonymous.get("/console/login", lang="zh").text
    assert anonymous.get("/console/login", lang="fr").status_code == 200  # ignored

    console = browser("DH-JF", "admin")
    zh = console.get("/console").text
    assert "待签收" in zh and "即将超时" in zh and "待评价" in zh and "全部" in zh
    en = console.get("/console", lang="en", view="to_claim").text
    assert "To claim" in en and "Due soon" in en
    # The language switch keeps the page's other parameters.
    assert 'href="/console?view=to_claim&amp;lang=zh"' in en
