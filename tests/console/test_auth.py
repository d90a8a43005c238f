"""Logging in: argon2 passwords, server-side sessions, throttling, expiry, CSRF, roles."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.console.accounts import MAX_FAILURES_PER_USERNAME, disable_staff, staff_by_username
from app.db import unit_of_work
from app.models.console import LoginAttempt, Staff, StaffSession
from tests.console.conftest import ORIGIN, PASSWORD, Console


def test_login_sets_a_session_cookie_and_stores_only_its_hash(app, rt, make_staff):
    name = make_staff("DH-JF", "handler")
    console = Console(app)
    r = console.login(name)
    assert r.status_code == 303 and r.headers["location"] == "/console"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Path=/console" in cookie
    token = console.client.cookies["gl_console"]
    with rt.sessions() as s:
        row = s.scalar(select(StaffSession))
        staff = s.scalar(select(Staff))
    assert row is not None and staff is not None
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in row.token_hash
    assert staff.password_hash.startswith("$argon2id$") and PASSWORD not in staff.password_hash
    page = console.get("/console")
    assert page.status_code == 200 and name in page.text


def test_the_session_cookie_is_secure_when_the_public_url_is_https(app, rt, make_staff):
    # Behind a proxy that ends TLS the app sees plain HTTP; the browser is on
    # GRIDLINE_PUBLIC_URL's https, so the cookie must be Secure all the same.
    assert rt.settings.public_url.startswith("https://")
    name = make_staff("DH-JF", "handler")
    plain = TestClient(app, base_url="http://testserver", follow_redirects=False)
    r = plain.post(
        "/console/login",
        data={"username": name, "password": PASSWORD},
        headers={"Origin": "http://testserver"},
    )
    assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]
    rt.settings.public_url = "http://gridline.internal"
    r = plain.post(
        "/console/login",
        data={"username": name, "password": PASSWORD},
        headers={"Origin": "http://testserver"},
    )
    assert r.status_code == 303 and "Secure" not in r.headers["set-cookie"]


def test_without_a_session_the_console_redirects_to_the_login_page(app):
    console = Console(app)
    r = console.get("/console/cases/1", view="all")
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=/console/cases/1%3Fview%3Dall"
    console.client.cookies.set("gl_console", "forged")
    assert console.get("/console").status_code == 303
    r = console.client.post("/console/bulk", data={}, headers={"Origin": "http://testserver"})
    assert r.status_code == 303 and r.headers["location"] == "/console/login?next=/console"


def test_login_goes_back_to_next_but_only_within_the_console(app, make_staff):
    name = make_staff("DH-JF", "handler")
    for asked, expected in (
        ("/console/cases/7", "/console/cases/7"),
        ("//evil.example/console", "/console"),
        ("https://evil.example/", "/console"),
        ("/api/v1/cases", "/console"),
    ):
        console = Console(app)
        r = console.client.post(
            "/console/login",
            data={"username": name, "password": PASSWORD, "next": asked},
            headers={"Origin": ORIGIN},
        )
        assert r.status_code == 303 and r.headers["location"] == expected, asked


def test_wrong_password_then_throttled_per_username(app, rt, clock, make_staff):
    name = make_staff("DH-JF", "handler")
    console = Console(app)
    for _ in range(MAX_FAILURES_PER_USERNAME):
        r = console.login(name, "wrong password!")
        assert r.status_code == 401
        assert "gl_console" not in r.headers.get("set-cookie", "")
    # Now even the right password is refused, with the wait.
    r = console.login(name)
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 15 * 60 + 1
    assert "15" in r.text  # "try again in 15 minutes"
    with rt.sessions() as s:
        failures = s.scalars(select(LoginAttempt).where(LoginAttempt.success.is_(False))).all()
    assert len(failures) == MAX_FAILURES_PER_USERNAME  # throttled tries are not counted
    clock.advance(minutes=15, seconds=1)
    assert console.login(name).status_code == 303


def test_throttle_per_client_ip_across_usernames(app, make_staff):
    name = make_staff("DH-JF", "handler")
    console = Console(app)
    for i in range(20):
        assert console.login(f"nobody{i}", "wrong password!").status_code == 401
    r = console.login(name)
    assert r.status_code == 429 and "retry-after" in r.headers


def test_throttle_is_shared_by_processes_through_the_database(app, rt, make_staff):
    """Failures recorded by another process (rows written directly) count here."""
    name = make_staff("DH-JF", "handler")
    with unit_of_work(rt.sessions) as s:
        for _ in range(MAX_FAILURES_PER_USERNAME):
            s.add(LoginAttempt(username=name, client_ip="10.9.9.9", at=rt.clock(), success=False))
    assert Console(app).login(name).status_code == 429


def test_logout_revokes_the_session(app, browser, rt):
    console = browser("DH-JF", "handler")
    token = console.client.cookies["gl_console"]
    copy = Console(app)  # another browser holding a copy of the cookie
    copy.client.cookies.set("gl_console", token)
    assert copy.get("/console").status_code == 200
    r = console.post("/console/logout")
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert "gl_console" not in console.client.cookies
    # The copy is dead too: the session ended on the server.
    assert copy.get("/console").status_code == 303
    with rt.sessions() as s:
        assert s.scalar(select(StaffSession.revoked_at)) is not None


def test_idle_and_absolute_expiry(app, browser, clock):
    idle = browser("DH-JF", "handler", "idle")
    clock.advance(hours=1, minutes=59)
    assert idle.get("/console").status_code == 200  # still alive, and seen again now
    clock.advance(hours=1, minutes=59)
    assert idle.get("/console").status_code == 200
    clock.advance(hours=2)
    assert idle.get("/console").status_code == 303  # idle for two hours

    busy = browser("DH-JF", "handler", "busy")
    for _ in range(11):
        clock.advance(hours=1)
        assert busy.get("/console").status_code == 200
    clock.advance(hours=1)
    assert busy.get("/console").status_code == 303  # twelve hours after login


def test_disabling_a_staff_member_ends_their_sessions(app, browser, rt):
    console = browser("DH-JF", "handler", "leaver")
    with unit_of_work(rt.sessions) as s:
        disable_staff(s, staff_by_username(s, "leaver"), now=rt.clock())
    assert console.get("/console").status_code == 303
    assert Console(app).login("leaver").status_code == 401


def test_posts_need_the_csrf_token_and_a_same_site_origin(app, browser):
    console = browser("DH-JF", "handler")
    r = console.post("/console/logout", csrf=False)
    assert r.status_code == 403 and "security token" in r.text
    r = console.post("/console/logout", {"csrf_token": "stale"})
    assert r.status_code == 403
    r = console.post("/console/logout", origin="https://evil.example")
    assert r.status_code == 403 and "evil.example" in r.text
    r = console.post("/console/logout", origin=None)
    assert r.status_code == 403 and "Origin" in r.text
    # A Referer from this site does when a browser sends no Origin.
    r = console.client.post(
        "/console/logout",
        data={"csrf_token": console.csrf},
        headers={"Referer": f"{ORIGIN}/console"},
    )
    assert r.status_code == 303


def test_the_public_url_is_an_accepted_origin(app, browser):
    console = browser("DH-JF", "handler")
    r = console.post("/console/logout", origin="https://gridline.example.org")
    assert r.status_code == 303


def test_login_form_refuses_other_sites(app, make_staff):
    name = make_staff("DH-JF", "handler")
    console = Console(app)
    r = console.login(name, Origin="https://evil.example")
    assert r.status_code == 403
    assert "gl_console" not in console.client.cookies


def test_roles(app, browser):
    viewer = browser("DH-JF", "viewer")
    assert viewer.get("/console").status_code == 200
    r = viewer.post("/console/bulk", {"action": "claim", "case": "1"})
    assert r.status_code == 403 and "handler" in r.text
    assert viewer.get("/console/audit").status_code == 403
    supervisor = browser("DH-JF", "supervisor")
    assert supervisor.get("/console/audit").status_code == 403
    admin = browser("DH-JF", "admin")
    assert admin.get("/console/audit").status_code == 200
