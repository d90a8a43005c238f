"""Bad input under /console is a 4xx page with a reason, never a 500."""

from __future__ import annotations

from urllib.parse import quote

from fastapi.routing import APIRoute

from tests.factories import RESIDENT

JUNK = ["", " ", "\x00", "𠀀" * 300, "-1", "9" * 40, "%", "<script>", "１", "null", "../../etc"]


def _ok(r, where) -> None:
    assert r.status_code < 500, (where, r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert '<p class="reason">' in r.text or "flash error" in r.text, where
        assert "<script>" not in r.text, where  # nothing echoed unescaped


def test_junk_query_and_form_values_never_answer_500(browser, phone, rt):
    from app.console.router import router

    phone(RESIDENT).text("楼道灯坏了")
    console = browser("DH-JF", "admin")
    gets = [r.path for r in router.routes if isinstance(r, APIRoute) and "GET" in r.methods]
    posts = [r.path for r in router.routes if isinstance(r, APIRoute) and "POST" in r.methods]
    names = ["view", "level", "grid", "category", "q", "page", "before", "code", "lang", "next"]
    for template in gets:
        for junk in JUNK:
            ref = quote(junk, safe="") or "x"
            path = template.replace("{case_ref}", ref)
            r = console.client.get(path, params={name: junk for name in names})
            _ok(r, (template, junk))
    for template in posts:
        if template in ("/console/logout", "/console/login"):
            continue
        for junk in JUNK:
            path = template.replace("{case_ref}", "1").replace("{action}", "claim")
            fields = {
                name: junk
                for name in ("action", "case", "phone", "reason", "note", "body", "purpose", "grid")
            }
            r = console.post(path, {**fields, **{n: junk for n in names if n != "lang"}})
            _ok(r, (template, junk))


def test_files_and_malformed_bodies_are_refused(browser):
    console = browser("DH-JF", "admin")
    r = console.client.post(
        "/console/bulk",
        data={"csrf_token": console.csrf, "action": "claim"},
        files={"case": ("x.txt", b"1")},
        headers={"Origin": "http://testserver"},
    )
    assert r.status_code == 400 and "files" in r.text.lower()
    r = console.client.post(
        "/console/bulk",
        content=b"\xff\xfe=%%%",
        headers={
            "Origin": "http://testserver",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert 400 <= r.status_code < 500
