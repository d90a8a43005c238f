"""`/console/map`: shaded areas, drill-down, the ranked table and its CSV, against
counts taken straight from the database, and an office's area as its limit."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import and_, func, or_, select

from app.console.map_shapes import CACHE_KEY
from app.db import unit_of_work
from app.models.cases import Case
from app.models.directory import GridShape, Region
from app.runtime import Runtime
from tests.api.conftest import HN_RESIDENT, PT_RESIDENT
from tests.console.report_helpers import DH_RESIDENT_2, add_boundaries, csv_rows, square, tables
from tests.factories import RESIDENT, STRANGER, WORKER_A, City
from tests.helpers import Phone, latest_case


@pytest.fixture
def area(rt: Runtime, city: City) -> City:
    with unit_of_work(rt.sessions) as session:
        add_boundaries(session)
    return city


def open_cases(phone: Callable[[str], Phone], rt: Runtime, clock) -> None:
    """DH-01: one resolved in time, one open; DH-HN-01 one open; PT-01 one; one unplaced."""
    resident, worker = phone(RESIDENT), phone(WORKER_A)
    resident.text("楼道灯坏了")
    with unit_of_work(rt.sessions) as session:
        code = latest_case(session).code
    clock.advance(minutes=5)
    worker.text(f"{code} 收到")
    clock.advance(minutes=30)
    worker.text(f"{code} 办结 换好了")
    phone(DH_RESIDENT_2).text("水管漏水")
    phone(HN_RESIDENT).text("路灯不亮")
    phone(PT_RESIDENT).text("码头护栏松了")
    phone(STRANGER).text("有事")
    clock.advance(hours=80)  # past the 72 h resolution deadline of the open ones


def expected(rt: Runtime, *, level: str, days: int) -> dict[str, dict[str, int]]:
    """Counts per unit straight from the cases table (no console code)."""
    now = rt.clock()
    tz = rt.settings.tz
    local_today = now.astimezone(tz).date()
    start = datetime.combine(local_today - timedelta(days=days - 1), datetime.min.time(), tz)
    column = {"grid": Case.grid_id, "town": Case.town_id, "county": Case.county_id}[level]
    overdue = and_(
        Case.resolve_due_at.is_not(None),
        or_(
            and_(
                Case.resolved_at.is_(None),
                Case.status.in_(("open", "claimed")),
                Case.resolve_due_at < now,
            ),
            Case.resolved_at > Case.resolve_due_at,
        ),
    )
    out: dict[str, dict[str, int]] = {}
    with unit_of_work(rt.sessions) as session:
        for code, new, open_, late in session.execute(
            select(
                Region.code,
                func.count(Case.id),
                func.count(Case.id).filter(
                    Case.status.in_(("awaiting_address", "open", "claimed"))
                ),
                func.count(Case.id).filter(overdue),
            )
            .join(Region, Region.id == column)
            .where(Case.created_at >= start)
            .group_by(Region.code)
        ):
            out[code] = {"new": new, "open": open_, "overdue": late}
    return out


def svg_of(html: str) -> str:
    return html[html.index("<svg") : html.index("</svg>")]


def cells(row: list[str]) -> dict[str, int]:
    return {"open": int(row[2]), "overdue": int(row[3]), "new": int(row[4])}


def test_county_map_shows_its_towns_with_the_database_counts(browser, rt, clock, phone, area):
    open_cases(phone, rt, clock)
    county = browser("DH", "viewer")
    r = county.get("/console/map", metric="open", days="7")
    assert r.status_code == 200, r.text
    table = tables(r.text)["map-table"]
    want = expected(rt, level="town", days=7)
    assert set(table.by_code()) == {"DH-JF", "DH-HN"}
    for code, row in table.by_code().items():
        assert cells(row) == want[code], code
    assert want["DH-JF"] == {"new": 2, "open": 1, "overdue": 1}  # the scenario is what we think
    # Ranked by the metric: both have 1 open; ties by code.
    assert table.codes == ["DH-HN", "DH-JF"]
    # Totals are the county's.
    assert table.foot[0][2:5] == ["2", "2", "3"]
    # Towns link to their own map (drill-down), keeping the metric and window.
    assert 'href="/console/map?unit=DH-JF&amp;metric=open&amp;days=7"' in r.text
    assert "PT" not in "".join(c or "" for c in table.codes)
    assert "东港" not in r.text and "PT-01" not in r.text  # nothing of the other county


def test_town_map_draws_grids_links_the_queue_and_lists_grids_without_a_boundary(
    browser, rt, clock, phone, area
):
    open_cases(phone, rt, clock)
    town = browser("DH-JF", "viewer")
    # Per 1,000 households: DH-01 has 2 households, DH-02 none (no rate, hatched).
    per = town.get("/console/map", metric="new", per="households")
    rows = tables(per.text)["map-table"].by_code()
    new_dh01 = expected(rt, level="grid", days=30)["DH-01"]["new"]
    assert rows["DH-01"][5] == "2" and rows["DH-01"][6] == f"{new_dh01 * 1000 / 2:.2f}"
    assert rows["DH-02"][5] == "0" and rows["DH-02"][6] == "—"
    assert f'data-code="DH-01" data-value="{new_dh01 * 1000 / 2:.2f}"' in svg_of(per.text)

    phone(STRANGER).text("人民路12号")  # the stranger's address: their case goes to DH-02
    r = town.get("/console/map", metric="overdue")  # a town office starts at its town
    assert r.status_code == 200, r.text
    table = tables(r.text)["map-table"]
    want = expected(rt, level="grid", days=30)
    assert want["DH-02"]["new"] == 1
    assert table.codes == ["DH-01", "DH-02"]  # ranked: DH-01 has the overdue case
    for code in ("DH-01", "DH-02"):
        assert cells(table.by_code()[code]) == want[code]
    # The SVG: DH-01 drawn, linked to the queue filtered to it; DH-02 has no boundary.
    svg = svg_of(r.text)
    assert 'role="group"' in svg and 'role="img"' not in svg  # it holds links
    assert re.search(
        r'<a href="/console\?grid=DH-01" aria-label="[^"]*\(DH-01\)[^"]*"[^>]*>'
        r'<path [^>]*data-code="DH-01"',
        svg,
    )
    assert 'data-code="DH-02"' not in svg
    assert f'data-code="DH-01" data-value="{want["DH-01"]["overdue"]}"' in svg
    no_shape = r.text[r.text.index('id="no-shape"') :]
    assert "DH-02" in no_shape[: no_shape.index("</ul>")]
    # The link lands on the queue, filtered to the grid (the queue accepts `grid`).
    with unit_of_work(rt.sessions) as session:
        ids = dict(session.execute(select(Region.code, Region.id)).all())
        mine = set(session.scalars(select(Case.code).where(Case.grid_id == ids["DH-01"])))
        others = set(session.scalars(select(Case.code).where(Case.grid_id == ids["DH-02"])))
    assert mine and others
    queue = town.get("/console", grid="DH-01")
    assert queue.status_code == 200
    assert all(f"#{code}" in queue.text for code in mine)
    assert not any(f"#{code}" in queue.text for code in others)


def test_map_csv_has_the_tables_numbers(browser, rt, clock, phone, area):
    open_cases(phone, rt, clock)
    county = browser("DH", "viewer")
    page = tables(county.get("/console/map", unit="DH-JF", metric="new").text)["map-table"]
    r = county.get("/console/map.csv", unit="DH-JF", metric="new")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = csv_rows(r.content)
    body = rows[1:]
    assert [row[1] for row in body] == page.codes
    for row in body:
        html = page.by_code()[row[1]]
        assert row[3:7] == html[2:6]


def test_city_map_shows_counties_and_counts_the_unplaced(browser, rt, clock, phone, area):
    open_cases(phone, rt, clock)
    city = browser("CITY", "viewer")
    r = city.get("/console/map", metric="new")
    table = tables(r.text)["map-table"]
    want = expected(rt, level="county", days=30)
    assert table.codes == ["DH", "PT"]
    for code, row in table.by_code().items():
        assert cells(row) == want[code]
    assert 'id="unplaced" data-n="1"' in r.text  # the stranger's case, awaiting an address
    assert city.get("/console/map", unit="PT-SJM").status_code == 200


def test_window_limits_the_cases_counted(browser, rt, clock, phone, area):
    phone(RESIDENT).text("楼道灯坏了")
    clock.advance(days=10)
    town = browser("DH-JF", "viewer")
    week = tables(town.get("/console/map", metric="new", days="7").text)["map-table"]
    month = tables(town.get("/console/map", metric="new", days="30").text)["map-table"]
    assert week.by_code()["DH-01"][4] == "0"
    assert month.by_code()["DH-01"][4] == "1"


def test_other_areas_and_bad_input_are_refused(browser, rt, area):
    pt = browser("PT-SJM", "viewer")
    dh = browser("DH", "viewer")
    assert pt.get("/console/map", unit="DH-JF").status_code == 404
    assert pt.get("/console/map", unit="DH").status_code == 404
    assert pt.get("/console/map.csv", unit="DH-JF").status_code == 404
    assert dh.get("/console/map", unit="PT-SJM").status_code == 404
    assert dh.get("/console/map", unit="NOPE").status_code == 404
    grid = dh.get("/console/map", unit="DH-01")
    assert grid.status_code == 422 and "county or a town" in grid.text
    for params in (
        {"metric": "bogus"},
        {"days": "abc"},
        {"days": "0"},
        {"days": "9999"},
        {"per": "x"},
    ):
        r = dh.get("/console/map", **params)
        assert r.status_code == 422, params
        assert (f"{next(iter(params))}" in r.text and "must" in r.text) or "only" in r.text
    own = pt.get("/console/map")
    assert own.status_code == 200
    assert "DH-" not in own.text and "定海" not in own.text.split("<main>")[1]


def test_paths_are_cached_until_the_boundaries_change(browser, rt, area):
    town = browser("DH-JF", "viewer")
    first = town.get("/console/map")
    assert 'data-code="DH-02"' not in svg_of(first.text)
    cache = rt.caches[CACHE_KEY]
    assert isinstance(cache, tuple) and ("DH-JF", "town") in cache[1]
    version = cache[0]
    town.get("/console/map")
    assert rt.caches[CACHE_KEY][0] == version
    with unit_of_work(rt.sessions) as session:
        grid2 = session.scalar(select(Region).where(Region.code == "DH-02"))
        session.add(GridShape(grid_id=grid2.id, geometry=square(0, 1)))
    again = town.get("/console/map")
    assert 'data-code="DH-02"' in svg_of(again.text)
    assert rt.caches[CACHE_KEY][0] != version
