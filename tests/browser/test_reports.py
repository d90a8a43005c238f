"""The map and the statistics, checked against the database the server writes."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import aliased

from app.models.cases import ACTIVE_STATUSES, Case
from app.models.directory import Region
from tests.browser.conftest import Console
from tests.browser.support import Server, screenshot, text

ZH = "zh"
TZ = ZoneInfo("Asia/Shanghai")  # GRIDLINE_TIMEZONE's default, which the server runs with
SOLVED = ("resolved", "closed")


def cases_of(server: Server, county: str, *, since: datetime) -> list[dict[str, object]]:
    """The county's cases opened since `since`, read straight from the SQLite file."""
    grid, town, county_r = aliased(Region), aliased(Region), aliased(Region)
    stmt = (
        select(
            Case.status,
            Case.category,
            Case.created_at,
            Case.resolved_at,
            grid.code,
            town.code,
        )
        .outerjoin(grid, grid.id == Case.grid_id)
        .outerjoin(town, town.id == Case.town_id)
        .join(county_r, county_r.id == Case.county_id)
        .where(county_r.code == county, Case.created_at >= since)
    )
    with server.session() as s:
        return [
            dict(zip(("status", "category", "created", "resolved", "grid", "town"), r, strict=True))
            for r in s.execute(stmt)
        ]


def table_rows(page: Page, table_id: str) -> list[list[str]]:
    rows = page.locator(f"#{table_id} tbody tr")
    return [
        [cell.strip() for cell in row.locator("th, td").all_inner_texts()] for row in rows.all()
    ]


def test_the_map_leads_from_the_county_to_a_grid_and_its_queue(console: Console, server: Server):
    here = server.open_case("DH-JF-XD-01", "井盖丢失了")
    next_door = server.open_case("DH-JF-XD-02", "路面塌陷")
    page = console.page(user="dh-county")
    page.goto("/console")
    page.get_by_role("navigation", name=text(ZH, "Main")).get_by_role(
        "link", name=text(ZH, "Map"), exact=True
    ).click()
    expect(page).to_have_url(re.compile(r"/console/map$"))
    county_map = page.get_by_role("group", name=re.compile("定海区"))
    expect(county_map).to_be_visible()
    screenshot(page, "map-county")

    # The town's figures in the table beside the map are the database's.
    since = datetime.combine(datetime.now(TZ).date() - timedelta(days=29), time(), TZ)
    rows = cases_of(server, "DH", since=since)
    open_in = Counter(r["town"] for r in rows if r["status"] in ACTIVE_STATUSES)
    new_in = Counter(r["town"] for r in rows)
    for town in ("DH-JF", "DH-GL"):
        row = page.locator(f'#map-table tbody tr[data-code="{town}"]')
        expect(row.locator('[data-col="open"]')).to_have_text(str(open_in[town]))
        expect(row.locator('[data-col="new"]')).to_have_text(str(new_in[town]))

    # Each area of the map is a link named by its label: the unit and its figure.
    town_link = county_map.get_by_role(
        "link",
        name=f"解放街道 (DH-JF): {text(ZH, 'Open cases')} {open_in['DH-JF']}",
        exact=True,
    )
    town_link.click()
    expect(page).to_have_url(re.compile(r"/console/map\?unit=DH-JF(&|$)"))
    town_map = page.get_by_role("group", name=re.compile("解放街道"))
    expect(town_map.locator("path[data-code]")).to_have_count(4)
    open_here = sum(
        1 for r in rows if r["grid"] == "DH-JF-XD-01" and r["status"] in ACTIVE_STATUSES
    )
    expect(
        page.locator('#map-table tbody tr[data-code="DH-JF-XD-01"] [data-col="open"]')
    ).to_have_text(str(open_here))
    screenshot(page, "map-town")

    town_map.get_by_role("link", name=re.compile(r"^\S+ \(DH-JF-XD-01\): ")).click()
    expect(page).to_have_url(re.compile(r"/console\?grid=DH-JF-XD-01$"))
    expect(page.get_by_label(re.compile("^" + re.escape(text(ZH, "Grid"))))).to_have_value(
        "DH-JF-XD-01"
    )
    expect(page.get_by_role("link", name=f"#{here.code}", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name=f"#{next_door.code}", exact=True)).to_have_count(0)


def test_statistics_tables_match_the_database(console: Console, server: Server):
    # Something open and something solved in each town, today.
    server.open_case("DH-JF-WS-02", "小区门口路灯不亮")
    done = server.open_case("DH-GL-XMT-01", "码头栏杆松了")
    server.team_replies(done, "办结 已加固")
    today = datetime.now(TZ).date()
    page = console.page(user="dh-county")
    page.goto(f"/console/stats?from={today}&to={today}")
    expect(page.get_by_label(text(ZH, "From"), exact=True)).to_have_value(str(today))
    expect(page.get_by_label(text(ZH, "To"), exact=True)).to_have_value(str(today))

    start = datetime.combine(today, time(), TZ)
    rows = [r for r in cases_of(server, "DH", since=start)]
    assert rows, "no cases today"
    solved = sum(1 for r in rows if r["status"] in SOLVED)
    assert solved >= 1
    expect(page.locator('#kpis [data-key="new"]')).to_have_text(str(len(rows)))
    expect(page.locator('#kpis [data-key="open"]')).to_have_text(
        str(sum(1 for r in rows if r["status"] in ACTIVE_STATUSES))
    )
    expect(page.locator('#kpis [data-key="resolution_rate"]')).to_have_text(
        f"{solved / len(rows) * 100:.1f}%"
    )

    # New and resolved per day: one day, today.
    resolved_today = sum(
        1 for r in rows if r["resolved"] is not None and r["resolved"].astimezone(TZ) >= start
    )
    assert table_rows(page, "table-daily") == [[str(today), str(len(rows)), str(resolved_today)]]

    # Per town: cases and solved.
    units = {row[0]: row for row in table_rows(page, "table-units")}
    for town in ("DH-GL", "DH-JF"):
        mine = [r for r in rows if r["town"] == town]
        assert units[town][2] == str(len(mine)), units[town]
        assert units[town][3] == str(sum(1 for r in mine if r["status"] in SOLVED)), units[town]
    assert set(units) == {r["town"] for r in rows}

    # Categories: each with its count.
    shown = {row[0]: row[1] for row in table_rows(page, "table-categories")}
    counted = Counter(r["category"] or text(ZH, "uncategorised") for r in rows)
    assert shown == {k: str(v) for k, v in counted.most_common(10)}

    # The CSV of a table has the page's numbers.
    with page.expect_download() as info:
        page.locator("#table-units caption").get_by_role("link").click()
    csv_text = info.value.path().read_bytes().decode("utf-8-sig")
    for code, row in units.items():
        assert f"{code},{row[1]},{row[2]},{row[3]}" in csv_text, csv_text
    screenshot(page, "stats")
