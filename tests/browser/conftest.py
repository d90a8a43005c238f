"""Fixtures of the browser suite: one server and one Chromium for the session, a
guarded page per test.

Runs as its own pytest process (`pytest tests/browser`); the main suite ignores
this folder. Chromium is Debian's `/usr/bin/chromium`: a missing browser skips
the suite on a workstation and fails it in CI (`CI` set), where `.ci/run`
installs it.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.browser.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LOCALES,
    SCREENSHOTS,
    VIEWPORTS,
    NetworkGuard,
    Server,
    Staff,
    screenshot,
    start_server,
    stop_server,
    text,
)

# The staff the tests log in as: a town office (解放街道), the county-level
# office (定海区) and an administrator.
STAFF = [
    Staff(username="jf-handler", office="DH-JF", role="supervisor"),
    Staff(username="dh-county", office="DH", role="supervisor"),
    Staff(username="admin", office="DH", role="admin"),
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the browser suite needs {reason} in CI (.ci/run installs it)")
    pytest.skip(reason)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--console-workdir",
        default=None,
        help="keep the server's database and log in this folder; a later run reuses them",
    )


@pytest.fixture(scope="session")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    kept = request.config.getoption("--console-workdir")
    if kept:
        workdir = Path(kept).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = tmp_path_factory.mktemp("console")
    proc, srv = start_server(workdir, STAFF)
    try:
        yield srv
    finally:
        srv.engine.dispose()
        stop_server(proc)


@pytest.fixture(scope="session", autouse=True)
def _fresh_failure_screenshots() -> None:
    """The FAILED-* screenshots in the folder are this run's only."""
    for stale in SCREENSHOTS.glob("FAILED-*.png"):
        stale.unlink()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        _unavailable(f"Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield browser
    finally:
        browser.close()


@dataclass
class Console:
    """Opens guarded browser contexts on the server, logged in as a staff member or not."""

    browser: Browser
    server: Server
    auth_states: dict[str, Any]
    guards: list[NetworkGuard] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    def context(
        self, *, user: str | None = None, lang: str = "zh", viewport: str = "desktop"
    ) -> BrowserContext:
        context = self.browser.new_context(
            base_url=self.server.base_url,
            viewport=VIEWPORTS[viewport],  # type: ignore[arg-type]
            locale=LOCALES[lang],
            accept_downloads=True,
            storage_state=self._state(user) if user else None,
        )
        guard = NetworkGuard(self.server.netloc)
        context.route("**/*", guard)
        self.guards.append(guard)
        self.contexts.append(context)
        context.on("page", self._watch)
        return context

    def page(self, *, user: str | None = None, lang: str = "zh", viewport: str = "desktop") -> Page:
        return self.context(user=user, lang=lang, viewport=viewport).new_page()

    def _watch(self, page: Page) -> None:
        page.on("pageerror", lambda exc: self.page_errors.append(f"{page.url}: {exc}"))

    def _state(self, user: str) -> Any:
        if user not in self.auth_states:
            context = self.browser.new_context(base_url=self.server.base_url)
            guard = NetworkGuard(self.server.netloc)
            context.route("**/*", guard)
            self.guards.append(guard)
            page = context.new_page()
            log_in(page, self.server.staff[user])
            page.wait_for_url(re.compile(r"/console/?(\?.*)?$"))
            self.auth_states[user] = context.storage_state()
            context.close()
        return self.auth_states[user]

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def log_in(page: Page, staff: Staff, *, password: str | None = None, here: bool = False) -> None:
    """Fill and send the login form the way a person does (`here`: the page shows it)."""
    if not here:
        page.goto("/console/login")
    page.get_by_label(text("zh", "Username")).fill(staff.username)
    page.get_by_label(text("zh", "Password")).fill(password or staff.password)
    page.get_by_role("button", name=text("zh", "Log in"), exact=True).click()


@pytest.fixture(scope="session")
def auth_states() -> dict[str, Any]:
    return {}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def console(
    request: pytest.FixtureRequest, browser: Browser, server: Server, auth_states: dict[str, Any]
) -> Iterator[Console]:
    opened = Console(browser=browser, server=server, auth_states=auth_states)
    yield opened
    if request.node.stash.get(CALL_FAILED, False):
        # What the browser showed when the test failed, for whoever reads the failure.
        for n, page in enumerate(p for c in opened.contexts for p in c.pages):
            with contextlib.suppress(PlaywrightError):
                screenshot(page, f"FAILED-{request.node.name}-{n}")
    opened.close()
    blocked = [url for guard in opened.guards for url in guard.blocked]
    assert not blocked, "requests left the local server (aborted):\n" + "\n".join(blocked)
    assert not opened.page_errors, "uncaught errors in pages:\n" + "\n".join(opened.page_errors)
