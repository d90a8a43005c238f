"""A case's page: act on it and watch its timeline; reveal a number for a purpose."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.models.messages import OutboundMessage
from tests.browser.conftest import Console
from tests.browser.support import Server, assert_accessible, screenshot, text

ZH = "zh"


def timeline(page: Page):
    return page.locator("ol.timeline > li")


def status_badge(page: Page):
    return page.get_by_role("heading", level=1).locator(".badge")


def test_claim_reply_and_resolve_from_the_case_page_grow_its_timeline(
    console: Console, server: Server
):
    case = server.open_case("DH-JF-XD-02", "楼道堆满杂物，有火灾隐患")
    page = console.page(user="jf-handler")
    page.goto(f"/console/cases/{case.id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"#{case.code}")
    expect(status_badge(page)).to_have_class(re.compile(r"\bopen\b"))
    expect(page.locator("p.summary")).to_contain_text("楼道堆满杂物")
    before = timeline(page).count()
    assert before >= 1
    screenshot(page, "case-open")

    page.get_by_role("button", name=text(ZH, "Claim"), exact=True).click()
    expect(page).to_have_url(re.compile(rf"/console/cases/{case.id}\?done=claim$"))
    expect(page.get_by_role("status")).to_have_text(text(ZH, "Done."))
    expect(status_badge(page)).to_have_class(re.compile(r"\bclaimed\b"))
    # The page came back from the action: the claim is on the timeline, by us.
    assert timeline(page).count() > before
    expect(page.locator("ol.timeline > li.event").filter(has_text="jf-handler")).to_have_count(1)

    reply = "您好，师傅今天下午三点上门清理。"
    page.get_by_label(text(ZH, "Reply to the resident (SMS from the hotline)")).fill(reply)
    page.get_by_role("button", name=text(ZH, "Send to the resident"), exact=True).click()
    expect(page).to_have_url(re.compile(r"\?done=reply$"))
    expect(page.locator("ol.timeline > li.sms").filter(has_text=reply)).to_have_count(1)
    with server.session() as s:
        bodies = s.scalars(
            select(OutboundMessage.body).where(
                OutboundMessage.case_id == case.id,
                OutboundMessage.to_phone == "+86" + case.phone,
            )
        ).all()
    assert any(reply in body for body in bodies), bodies

    page.get_by_label(text(ZH, "What was done")).fill("已联系物业清理完毕")
    page.get_by_role("button", name=text(ZH, "Resolve"), exact=True).click()
    expect(page).to_have_url(re.compile(r"\?done=resolve$"))
    expect(status_badge(page)).to_have_class(re.compile(r"\bresolved\b"))
    expect(page.locator("ol.timeline")).to_contain_text("已联系物业清理完毕")
    # Resolved: claiming and resolving are gone, reopening is offered.
    expect(page.get_by_role("button", name=text(ZH, "Claim"), exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name=text(ZH, "Reopen"), exact=True)).to_be_visible()
    screenshot(page, "case-resolved")

    stored = server.case(case.id)
    assert stored.status == "resolved"
    assert stored.claimed_by == "api:DH-JF:@jf-handler"


def test_a_refused_action_says_why_on_the_page(console: Console, server: Server):
    case = server.open_case("DH-JF-XD-01", "电梯坏了")
    page = console.page(user="jf-handler")
    page.goto(f"/console/cases/{case.id}")
    server.team_replies(case, "收到")  # the grid claims it while the page is open
    page.get_by_role("button", name=text(ZH, "Claim"), exact=True).click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(f"#{case.code}")
    expect(alert).to_contain_text("claimed")
    expect(status_badge(page)).to_have_class(re.compile(r"\bclaimed\b"))


def test_revealing_a_number_needs_a_purpose_and_is_in_the_audit_log(
    console: Console, server: Server
):
    case = server.open_case("DH-JF-WS-01", "家里老人摔倒了需要帮助")
    full = "+86" + case.phone
    page = console.page(user="jf-handler")
    page.goto(f"/console/cases/{case.id}")
    resident = page.locator("section.panel").filter(
        has=page.get_by_role("heading", name=text(ZH, "Resident"), exact=True)
    )
    expect(resident).to_contain_text(f"{case.phone[:3]}****{case.phone[-4:]}")
    expect(page.locator("body")).not_to_contain_text(case.phone)

    purpose = "回电确认老人住址"
    page.get_by_label(text(ZH, "Purpose of revealing the number")).fill(purpose)
    page.get_by_role("button", name=text(ZH, "Reveal the number"), exact=True).click()
    expect(resident.locator(".revealed")).to_have_text(full)
    assert_accessible(page)
    # Shown once: the page as loaded again masks it.
    page.goto(f"/console/cases/{case.id}")
    expect(page.locator("body")).not_to_contain_text(case.phone)

    # Staff below admin have no audit log.
    expect(page.get_by_role("link", name=text(ZH, "Audit log"))).to_have_count(0)
    response = page.goto("/console/audit")
    assert response is not None and response.status == 403

    admin = console.page(user="admin")
    admin.goto("/console")
    admin.get_by_role("navigation", name=text(ZH, "Main")).get_by_role(
        "link", name=text(ZH, "Audit log")
    ).click()
    expect(admin).to_have_url(re.compile(r"/console/audit$"))
    row = admin.get_by_role("row").filter(has_text=purpose)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("jf-handler")
    expect(row).to_contain_text("DH-JF")
    expect(row).to_contain_text(text(ZH, "Phone revealed"))
    expect(row.get_by_role("link", name=str(case.id), exact=True)).to_have_attribute(
        "href", f"/console/cases/{case.id}"
    )
    screenshot(admin, "audit")
