"""The suite's own machinery: the vendored axe-core, the network guard, the server."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.browser.conftest import Console
from tests.browser.support import AXE_JS, VENDOR, Server, sha256


def test_vendored_files_match_their_checksums():
    listed = {}
    for line in (VENDOR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        listed[name] = digest
    assert set(listed) == {"axe.min.js", "LICENSE"}
    for name, digest in listed.items():
        assert sha256(VENDOR / name) == digest, f"{name} differs from SHA256SUMS"
    # The pinned release, as its own header says.
    assert re.match(r"/\*! axe v4\.14\.1\b", AXE_JS.read_text()[:40])


def test_guard_aborts_and_records_requests_that_leave_the_server(console: Console, server: Server):
    page = console.page()
    # FastAPI's /docs page loads Swagger UI from a CDN: exactly what the guard stops.
    page.goto("/docs")
    guard = console.guards[-1]
    assert guard.blocked, "the CDN requests of /docs were not seen by the guard"
    assert all(server.netloc not in url for url in guard.blocked)
    assert any("cdn" in url for url in guard.blocked), guard.blocked
    page.close()  # nothing more from it (the favicon is fetched late)
    guard.blocked.clear()
    console.page_errors.clear()  # Swagger UI's script never came

    # A navigation away from the server is stopped too.
    page = console.page()
    with pytest.raises(PlaywrightError):
        page.goto("https://example.org/somewhere")
    guard = console.guards[-1]
    assert guard.blocked == ["https://example.org/somewhere"]
    guard.blocked.clear()  # seen and expected: not a failure of this test
