"""Chinese by default; English on request, remembered across pages; and back."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import Console
from tests.browser.support import Server, screenshot, text

CJK = re.compile(r"[\u4e00-\u9fff]")
NAV = ("Queue", "Map", "Statistics", "Duty")


def nav_labels(page: Page) -> list[str]:
    nav = page.get_by_role("navigation", name=re.compile(f"^({text('zh', 'Main')}|Main)$"))
    return [label.strip() for label in nav.get_by_role("link").all_inner_texts()]


def test_switching_the_language_to_english_and_back(console: Console, server: Server):
    page = console.page(user="jf-handler")
    page.goto("/console?view=to_claim")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    zh_nav = nav_labels(page)
    assert zh_nav == [text("zh", m) for m in NAV]
    assert all(CJK.search(label) for label in zh_nav), (
        f"the console's menu is not Chinese: {zh_nav}"
    )

    page.get_by_role("link", name="English", exact=True).click()
    # The same page, its filter kept, in English.
    expect(page).to_have_url(re.compile(r"/console\?view=to_claim&lang=en$"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert nav_labels(page) == list(NAV)
    screenshot(page, "queue-en")

    # Remembered: the next page, without ?lang, is English too.
    page.get_by_role("link", name="Statistics", exact=True).click()
    expect(page).to_have_url(re.compile(r"/console/stats$"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1).filter(visible=True)).to_contain_text("Statistics")

    page.get_by_role("link", name="中文", exact=True).click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    assert nav_labels(page) == zh_nav
    page.goto("/console/map")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("link", name="English", exact=True)).to_be_visible()
