"""Every console page, in Chinese and English, on a desktop and on a phone: it
answers, says its language, passes axe-core (no serious or critical violation),
shows no unmasked phone, does not scroll sideways on a phone, and leaves a
screenshot in tests/browser/screenshots/ for people to look at."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Console
from tests.browser.support import (
    LOCALES,
    VIEWPORTS,
    OpenedCase,
    Server,
    axe_violations,
    format_violations,
    no_horizontal_scroll,
    screenshot,
    wide_elements,
)

MOBILE = re.compile(r"1[3-9]\d{9}(?!\d)")

# (name, who looks at it, path; {case} is a case of the town office's area)
PAGES = [
    ("login", None, "/console/login"),
    ("queue", "jf-handler", "/console"),
    ("case", "jf-handler", "/console/cases/{case}"),
    ("map", "dh-county", "/console/map?unit=DH-JF"),
    ("stats", "dh-county", "/console/stats"),
    ("duty", "dh-county", "/console/duty"),
    ("audit", "admin", "/console/audit"),
]


@pytest.fixture(scope="module")
def a_case(server: Server) -> OpenedCase:
    case = server.open_case("DH-JF-WS-01", "楼道灯坏了，请帮忙修一下")
    server.team_replies(case, "收到")
    server.team_replies(case, "师傅下午到")
    return case


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("lang", list(LOCALES))
@pytest.mark.parametrize(("name", "user", "path"), PAGES, ids=[p[0] for p in PAGES])
def test_page_is_accessible_in_each_language_and_size(
    console: Console,
    a_case: OpenedCase,
    name: str,
    user: str | None,
    path: str,
    lang: str,
    viewport: str,
):
    page = console.page(user=user, lang=lang, viewport=viewport)
    url = path.format(case=a_case.id)
    url += ("&" if "?" in url else "?") + f"lang={lang}"
    response = page.goto(url)
    assert response is not None and response.status == 200, (url, response and response.status)
    expect(page.locator("html")).to_have_attribute("lang", LOCALES[lang] if lang == "zh" else "en")
    screenshot(page, f"page-{name}-{lang}")
    problems = []
    # Phones are masked on every page (a number is shown only once, on purpose).
    unmasked = MOBILE.findall(page.locator("body").inner_text())
    if unmasked:
        problems.append(f"unmasked phone numbers: {sorted(set(unmasked))}")
    violations = axe_violations(page)
    if violations:
        problems.append("axe-core:\n" + format_violations(violations))
    if viewport == "phone":
        width, inner = no_horizontal_scroll(page)
        if width > inner:
            problems.append(
                f"the page scrolls sideways on a phone: {width}px > {inner}px; too wide: "
                + ", ".join(wide_elements(page))
            )
    assert not problems, f"{url}:\n" + "\n".join(problems)
