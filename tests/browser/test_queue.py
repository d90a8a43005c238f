"""The queue: status cards and filters in the URL, bulk actions, CSV export, phones."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from app.models.cases import Case
from app.models.console import AuditEntry
from tests.browser.conftest import Console
from tests.browser.support import (
    Server,
    assert_accessible,
    no_horizontal_scroll,
    screenshot,
    text,
    wide_elements,
)
from tests.helpers import wait_for

ZH = "zh"
TZ = ZoneInfo("Asia/Shanghai")  # GRIDLINE_TIMEZONE's default, which the server runs with


def card(page: Page, view: str):
    """A status card of the queue (its text holds a count, so it is found by its view)."""
    return page.get_by_role("navigation", name=text(ZH, "Status")).locator(f'a[data-view="{view}"]')


def labelled(page: Page, msgid: str):
    """The control a <label> wraps: its name is the label's text, then the options."""
    return page.get_by_label(re.compile("^" + re.escape(text(ZH, msgid))))


def case_row(page: Page, code: str):
    return page.get_by_role("row").filter(has=page.get_by_role("link", name=f"#{code}", exact=True))


def test_a_status_card_filters_the_queue_and_back_and_forward_keep_the_filter(
    console: Console, server: Server
):
    waiting = server.open_case("DH-JF-WS-01", "路灯不亮了")
    taken = server.open_case("DH-JF-WS-01", "垃圾没人清运")
    server.team_replies(taken, "收到")
    page = console.page(user="jf-handler")
    page.goto("/console")
    expect(case_row(page, waiting.code)).to_be_visible()
    expect(case_row(page, taken.code)).to_be_visible()

    card(page, "to_claim").click()
    expect(page).to_have_url(re.compile(r"/console\?view=to_claim"))
    expect(card(page, "to_claim")).to_have_attribute("aria-current", "true")
    expect(case_row(page, waiting.code)).to_be_visible()
    expect(case_row(page, taken.code)).to_have_count(0)
    screenshot(page, "queue-to-claim")

    card(page, "in_progress").click()
    expect(page).to_have_url(re.compile(r"/console\?view=in_progress"))
    expect(case_row(page, taken.code)).to_be_visible()
    expect(case_row(page, waiting.code)).to_have_count(0)

    page.go_back()
    expect(page).to_have_url(re.compile(r"/console\?view=to_claim"))
    expect(card(page, "to_claim")).to_have_attribute("aria-current", "true")
    expect(case_row(page, waiting.code)).to_be_visible()
    expect(case_row(page, taken.code)).to_have_count(0)

    page.go_forward()
    expect(page).to_have_url(re.compile(r"/console\?view=in_progress"))
    expect(card(page, "in_progress")).to_have_attribute("aria-current", "true")
    expect(case_row(page, taken.code)).to_be_visible()

    # The filter form keeps the card and adds a grid; the URL says both.
    labelled(page, "Grid").select_option("DH-JF-WS-01")
    page.get_by_role("button", name=text(ZH, "Filter"), exact=True).click()
    expect(page).to_have_url(re.compile(r"view=in_progress"))
    expect(page).to_have_url(re.compile(r"grid=DH-JF-WS-01"))
    expect(case_row(page, taken.code)).to_be_visible()
    page.reload()
    expect(labelled(page, "Grid")).to_have_value("DH-JF-WS-01")
    expect(case_row(page, taken.code)).to_be_visible()


def test_bulk_claim_shows_the_result_of_each_case(console: Console, server: Server):
    cases = [server.open_case("DH-JF-XD-01", f"第{n}件事") for n in (1, 2, 3)]
    already = cases[2]
    server.team_replies(already, "收到")  # claimed by the grid: the console cannot claim it
    page = console.page(user="jf-handler")
    page.goto("/console")
    for case in cases:
        page.get_by_role("checkbox", name=f"{text(ZH, 'Select')} #{case.code}", exact=True).check()
    labelled(page, "Action").select_option("claim")
    page.get_by_role("button", name=text(ZH, "Apply"), exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("2 / 3")
    for case in cases[:2]:
        expect(case_row(page, case.code).get_by_role("cell").last).to_have_text(text(ZH, "Done"))
    refused = case_row(page, already.code).get_by_role("cell").last
    expect(refused).to_contain_text(text(ZH, "Not done") + ": ")
    expect(refused).to_contain_text("claimed")
    screenshot(page, "queue-bulk-claim")
    assert_accessible(page)

    with server.session() as s:
        claimed_by = dict(
            s.execute(
                select(Case.id, Case.claimed_by).where(Case.id.in_([c.id for c in cases]))
            ).all()
        )
    assert claimed_by[cases[0].id] == claimed_by[cases[1].id] == "api:DH-JF:@jf-handler"
    assert claimed_by[already.id] != "api:DH-JF:@jf-handler"

    page.get_by_role("link", name=text(ZH, "Back to the queue")).click()
    expect(page).to_have_url(re.compile(r"/console$"))


def test_csv_export_has_the_filtered_cases_with_phones_masked(console: Console, server: Server):
    mine = server.open_case("DH-JF-XD-02", "下水道堵了")
    elsewhere = server.open_case("DH-JF-WS-02", "噪音扰民")
    page = console.page(user="jf-handler")
    page.goto("/console?grid=DH-JF-XD-02")
    expect(case_row(page, mine.code)).to_be_visible()
    with server.session() as s:
        last_audit = s.scalar(select(func.max(AuditEntry.id))) or 0
    with page.expect_download() as info:
        page.get_by_role("button", name=text(ZH, "Export these cases as CSV")).click()
    download = info.value
    assert download.suggested_filename.startswith("cases-DH-JF-")
    assert download.suggested_filename.endswith(".csv")
    content = download.path().read_bytes().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(content)))
    codes = {row["code"] for row in rows}
    assert mine.code in codes
    assert elsewhere.code not in codes
    ours = next(row for row in rows if row["code"] == mine.code)
    assert ours["area"].endswith("西大街社区第二网格"), ours["area"]
    for phone in (mine.phone, elsewhere.phone):
        assert phone not in content and phone[-8:] not in content
    assert ours["resident"] == f"{mine.phone[:3]}****{mine.phone[-4:]}", ours["resident"]
    # Nothing in the file is an unmasked mobile number.
    assert not re.search(r"1[3-9]\d{9}", content)

    # The export is in the audit log, and the administrator sees it there, newest first.
    def exported() -> AuditEntry | None:
        with server.session() as s:
            return s.scalar(
                select(AuditEntry)
                .where(AuditEntry.id > last_audit, AuditEntry.action == "export_csv")
                .order_by(AuditEntry.id.desc())
            )

    entry = wait_for(exported, what="the export's audit row")
    assert isinstance(entry, AuditEntry)
    assert (entry.username, entry.office_code) == ("jf-handler", "DH-JF")
    assert entry.detail["filters"]["grid"] == "DH-JF-XD-02"
    assert entry.detail["rows"] == len(rows)
    admin = console.page(user="admin")
    admin.goto("/console/audit")
    newest = admin.locator("table.cases tbody tr").first
    cells = newest.locator("td")
    expect(cells).to_have_count(8)
    expect(cells.nth(0)).to_have_text(
        entry.at.replace(tzinfo=entry.at.tzinfo or UTC).astimezone(TZ).strftime("%Y-%m-%d %H:%M:%S")
    )
    expect(cells.nth(1)).to_have_text("jf-handler")
    expect(cells.nth(2)).to_have_text("DH-JF")
    expect(cells.nth(3)).to_have_text(text(ZH, "CSV export"))
    expect(cells.nth(7)).to_contain_text("DH-JF-XD-02")
    expect(cells.nth(7)).to_contain_text(f"rows: {len(rows)}")


def test_the_queue_is_usable_on_a_phone(console: Console, server: Server):
    case = server.open_case("DH-JF-WS-02", "楼上漏水，请尽快处理")
    page = console.page(user="jf-handler", viewport="phone")
    page.goto("/console")
    expect(card(page, "to_claim")).to_be_visible()
    row = case_row(page, case.code)
    expect(row).to_be_visible()
    width, inner = no_horizontal_scroll(page)
    assert width <= inner, f"the queue scrolls sideways: {width}px > {inner}px " + ", ".join(
        wide_elements(page)
    )
    screenshot(page, "queue-phone")
    row.get_by_role("link", name=f"#{case.code}").click()
    expect(page).to_have_url(re.compile(rf"/console/cases/{case.id}$"))
    width, inner = no_horizontal_scroll(page)
    assert width <= inner, f"the case scrolls sideways: {width}px > {inner}px " + ", ".join(
        wide_elements(page)
    )


def test_live_refresh_brings_in_a_new_case_highlighted(console: Console, server: Server):
    """The queue polls its live fragment (ETag); a case opened meanwhile appears
    marked new, and the rows already there are not. The poll is triggered the
    way the page does when it becomes visible again, instead of waiting 20 s."""
    before = server.open_case("DH-JF-WS-01", "井盖松动")
    page = console.page(user="jf-handler")
    page.goto("/console")
    expect(case_row(page, before.code)).to_be_visible()

    after = server.open_case("DH-JF-WS-01", "小区门禁坏了")
    expect(case_row(page, after.code)).to_have_count(0)  # not reloaded yet
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(case_row(page, after.code)).to_be_visible()
    expect(case_row(page, after.code)).to_have_class(re.compile(r"\bnew\b"))
    expect(case_row(page, before.code)).not_to_have_class(re.compile(r"\bnew\b"))
