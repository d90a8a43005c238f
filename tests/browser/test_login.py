"""Logging in and out of the console, as a person does it."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import Console, log_in
from tests.browser.support import Server, assert_accessible, screenshot, text


def test_a_wrong_password_is_refused_with_a_message_and_the_right_one_opens_the_queue(
    console: Console, server: Server
):
    staff = server.staff["jf-handler"]
    page = console.page()

    # Not signed in: the queue sends us to the login page, remembering where we were going.
    page.goto("/console?view=to_claim")
    expect(page).to_have_url(re.compile(r"/console/login\?next=/console%3Fview%3Dto_claim$"))
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    screenshot(page, "login")

    log_in(page, staff, password="not-the-password", here=True)
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_have_text(
        text("zh", "Wrong username or password, or the account is disabled.")
    )
    expect(page.get_by_label(text("zh", "Username"))).to_have_value(staff.username)
    expect(page.get_by_label(text("zh", "Password"))).to_have_value("")
    screenshot(page, "login-failed")
    assert_accessible(page)  # with its error message

    log_in(page, staff, here=True)
    # Back where we were going, as that office.
    expect(page).to_have_url(re.compile(r"/console\?view=to_claim$"))
    header = page.get_by_role("banner")
    expect(header).to_contain_text(staff.username)
    expect(header).to_contain_text("解放街道")


def test_logging_out_ends_the_session(console: Console, server: Server):
    # A session of its own: the suite's shared sessions must stay alive.
    page = console.page()
    log_in(page, server.staff["dh-county"])
    expect(page).to_have_url(re.compile(r"/console$"))

    page.get_by_role("button", name=text("zh", "Log out"), exact=True).click()
    expect(page).to_have_url(re.compile(r"/console/login$"))
    page.goto("/console")
    expect(page).to_have_url(re.compile(r"/console/login\?next=/console$"))
