"""`/console/stats`: figures, per-day, per-town, satisfaction and category tables,
their CSV downloads, against numbers computed straight from the database."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from app.console.console_stats import parse_period
from app.db import unit_of_work
from app.errors import Unprocessable
from app.models.cases import Case, CaseEvent
from app.models.directory import Region
from app.runtime import Runtime
from tests.api.conftest import HN_RESIDENT, HN_WORKER, PT_RESIDENT, categories  # noqa: F401
from tests.console.report_helpers import DH_RESIDENT_2, add_boundaries, csv_rows, tables
from tests.factories import RESIDENT, STRANGER, WORKER_A
from tests.helpers import latest_case

MONTH = "2026-11"


@pytest.fixture
def area(rt: Runtime, city):
    with unit_of_work(rt.sessions) as session:
        add_boundaries(session)
    return city


def code_of_latest(rt: Runtime) -> str:
    with unit_of_work(rt.sessions) as session:
        return latest_case(session).code


def scenario(phone, rt: Runtime, clock) -> None:
    """Over two local days (Nov 25 and 26): DH-JF two cases (one resolved the
    next day, rated satisfied; one still open), DH-HN one resolved the same day,
    rated not satisfied (reopened), PT one, and an unplaced one."""
    resident, worker = phone(RESIDENT), phone(WORKER_A)
    resident.text("楼道灯坏了")  # Nov 25 10:00 local
    first = code_of_latest(rt)
    clock.advance(minutes=12)
    worker.text(f"{first} 收到")
    phone(HN_RESIDENT).text("护栏松了")  # category safety
    hn = code_of_latest(rt)
    clock.advance(minutes=20)
    phone(HN_WORKER).text(f"{hn} 收到")
    clock.advance(hours=2)
    phone(HN_WORKER).text(f"{hn} 办结 修好了")
    phone(HN_RESIDENT).text("2")  # not satisfied: reopened
    phone(PT_RESIDENT).text("码头护栏松了")
    phone(STRANGER).text("有事")
    clock.advance(hours=20)  # Nov 26 08:32 local
    worker.text(f"{first} 办结 换好了")
    resident.text("1")
    phone(DH_RESIDENT_2).text("水管漏水")
    clock.advance(hours=2)


def db_figures(rt: Runtime, *, county: str | None = None) -> dict[str, object]:
    """The period's figures straight from the tables."""
    tz = rt.settings.tz
    start = datetime(2026, 11, 1, tzinfo=tz)
    end = datetime(2026, 12, 1, tzinfo=tz)
    with unit_of_work(rt.sessions) as session:
        where = [Case.created_at >= start, Case.created_at < end]
        if county:
            county_id = session.scalar(select(Region.id).where(Region.code == county))
            where.append(Case.county_id == county_id)
        cases = list(session.scalars(select(Case).where(*where)))
        resolved = list(
            session.scalars(
                select(Case.resolved_at).where(
                    Case.resolved_at >= start,
                    Case.resolved_at < end,
                    *(where[2:]),
                )
            )
        )
        claims = dict(
            session.execute(
                select(CaseEvent.case_id, func.min(CaseEvent.at))
                .where(CaseEvent.kind.in_(("claimed", "assigned")))
                .group_by(CaseEvent.case_id)
            ).all()
        )
        towns = {r.id: r.code for r in session.scalars(select(Region))}
    return {
        "cases": cases,
        "new_per_day": Counter(c.created_at.astimezone(tz).date().isoformat() for c in cases),
        "resolved_per_day": Counter(r.astimezone(tz).date().isoformat() for r in resolved),
        "claims": claims,
        "towns": towns,
    }


def nearest_rank(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


@pytest.mark.usefixtures("categories")
def test_county_report_matches_the_database(browser, rt, clock, phone, area):
    scenario(phone, rt, clock)
    county = browser("DH", "viewer")
    r = county.get("/console/stats", month=MONTH)
    assert r.status_code == 200, r.text
    t = tables(r.text)
    db = db_figures(rt, county="DH")
    cases: list[Case] = db["cases"]  # type: ignore[assignment]
    assert len(cases) == 3  # the scenario: DH-01 ×2, DH-HN-01

    summary = {row[0]: row[1] for row in t["table-summary"].rows}
    solved = [c for c in cases if c.status in ("resolved", "closed")]
    values = list(summary.values())
    new, open_ = int(values[0]), int(values[1])
    assert new == len(cases)
    assert open_ == sum(c.status in ("open", "claimed", "awaiting_address") for c in cases)
    assert int(values[3]) == len(solved)
    assert float(values[4]) == round(len(solved) / len(cases) * 100, 1)
    claim_minutes = [
        (db["claims"][c.id] - c.created_at).total_seconds() / 60  # type: ignore[index]
        for c in cases
        if c.id in db["claims"]  # type: ignore[operator]
    ]
    assert float(values[5]) == round(nearest_rank(claim_minutes, 50), 1)
    assert float(values[6]) == round(nearest_rank(claim_minutes, 90), 1)
    rated = [c for c in cases if c.rating is not None]
    assert int(values[9]) == len(rated) >= 1
    assert float(values[10]) == round(sum(c.rating == 1 for c in rated) / len(rated) * 100, 1)

    daily = {row[0]: (int(row[1]), int(row[2])) for row in t["table-daily"].rows}
    assert len(daily) == 30  # every day of November, zeros included
    for day, (new_n, resolved_n) in daily.items():
        assert new_n == db["new_per_day"][day], day  # type: ignore[index]
        assert resolved_n == db["resolved_per_day"][day], day  # type: ignore[index]
    assert daily["2026-11-25"][0] == 2 and daily["2026-11-26"] == (1, 1)

    units = {row[0]: row for row in t["table-units"].rows}
    assert set(units) == {"DH-JF", "DH-HN"}
    for code, row in units.items():
        mine = [c for c in cases if db["towns"][c.town_id] == code]  # type: ignore[index]
        assert int(row[2]) == len(mine)
        assert int(row[3]) == sum(c.status in ("resolved", "closed") for c in mine)
        hours = [
            (c.resolved_at - c.created_at).total_seconds() / 3600 for c in mine if c.resolved_at
        ]
        assert row[5] == (str(round(nearest_rank(hours, 50), 2)) if hours else "—")

    categories_ = {row[0]: int(row[1]) for row in t["table-categories"].rows}
    assert sum(categories_.values()) == len(cases)
    assert categories_["safety"] == sum(c.category == "safety" for c in cases) == 1

    # Nothing of the other county or the unplaced case.
    main = r.text.split("<main>")[1]
    assert "PT" not in "".join(units) and "沈家门" not in main and "普陀" not in main

    # Charts: one SVG per table, each an image with a title.
    assert main.count('<svg xmlns="http://www.w3.org/2000/svg"') == 4
    assert main.count('role="img"') == 4


@pytest.mark.usefixtures("categories")
def test_csv_downloads_equal_the_tables(browser, rt, clock, phone, area):
    scenario(phone, rt, clock)
    county = browser("DH", "viewer")
    page = tables(county.get("/console/stats", month=MONTH).text)
    for name in ("summary", "daily", "units", "satisfaction", "categories"):
        r = county.get("/console/stats.csv", table=name, month=MONTH)
        assert r.status_code == 200, (name, r.text)
        assert r.headers["content-type"].startswith("text/csv")
        assert f"{name}-DH-2026-11-01-2026-11-30.csv" in r.headers["content-disposition"]
        rows = csv_rows(r.content)[1:]
        html = page[f"table-{name}"].rows
        if name == "summary":
            assert [row[1:] for row in rows] == [[row[0], row[1].replace("—", "")] for row in html]
        else:
            assert [[v or "—" for v in row] for row in rows] == html, name


def test_monthly_report_heading_and_print_css(browser, rt, area):
    town = browser("DH-JF", "viewer")
    r = town.get("/console/stats", month=MONTH, lang="en")
    assert r.status_code == 200
    assert "解放街道: monthly report, 2026-11" in r.text
    assert 'href="/console/static/reports.css"' in r.text
    css = town.get("/console/static/reports.css")
    assert css.status_code == 200
    print_rules = css.text[css.text.index("@media print") :]
    assert "header.topbar" in print_rules and ".report-form" in print_rules
    assert "display: none" in print_rules and ".report-heading { display: block; }" in print_rules
    # A range that is not a month is a report of its dates.
    ranged = town.get("/console/stats", **{"from": "2026-11-03", "to": "2026-11-09", "lang": "en"})
    assert "report, 2026-11-03 to 2026-11-09" in ranged.text
    daily = tables(ranged.text)["table-daily"].rows
    assert [row[0] for row in daily] == [f"2026-11-{d:02d}" for d in range(3, 10)]
    # The default: the last 30 days up to today.
    default = tables(town.get("/console/stats").text)["table-daily"].rows
    assert len(default) == 30 and default[-1][0] == "2026-11-25"


def test_a_neighbouring_office_sees_only_its_own_cases(browser, rt, clock, phone, area):
    scenario(phone, rt, clock)
    pt = browser("PT-SJM", "viewer")
    r = pt.get("/console/stats", month=MONTH)
    values = [row[1] for row in tables(r.text)["table-summary"].rows]
    assert int(values[0]) == 1  # PT's one case
    units = tables(r.text)["table-units"].rows
    assert [row[0] for row in units] == ["PT-01"]  # a town office: by grid
    assert "DH-" not in r.text.split("<main>")[1]
    rows = csv_rows(pt.get("/console/stats.csv", table="units", month=MONTH).content)
    assert [row[0] for row in rows[1:]] == ["PT-01"]


def test_bad_periods_and_tables_are_refused_with_a_reason(browser, area):
    town = browser("DH-JF", "viewer")
    bad = [
        {"from": "2026-13-01"},
        {"to": "yesterday"},
        {"from": "2026-11-10", "to": "2026-11-01"},
        {"from": "2024-01-01", "to": "2026-11-01"},
        {"month": "2026-13"},
        {"month": "11/2026"},
        {"month": "9999-12"},
        {"month": "0000-01"},
        {"from": "0001-01-01", "to": "0001-01-02"},
        {"to": "9999-12-31"},
        {"from": "２０２６-11-01"},
    ]
    for params in bad:
        r = town.get("/console/stats", **params)
        assert r.status_code == 422, params
        assert any(word in r.text for word in ("YYYY", "must", "at most", "between")), params
    r = town.get("/console/stats.csv", table="secrets", month=MONTH)
    assert r.status_code == 422 and "summary" in r.text
    assert town.get("/console/stats.csv", table="daily", month="2026-00").status_code == 422


def test_parse_period():
    tz = ZoneInfo("Asia/Shanghai")
    now = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)  # already the 26th in Zhoushan
    p = parse_period(None, None, None, now=now, tz=tz)
    assert (p.first.isoformat(), p.last.isoformat()) == ("2026-10-28", "2026-11-26")
    feb = parse_period(None, None, "2028-02", now=now, tz=tz)
    assert feb.last.isoformat() == "2028-02-29" and feb.whole_month == "2028-02"
    assert feb.start == datetime(2028, 1, 31, 16, 0, tzinfo=UTC)
    assert parse_period("2026-11-01", "2026-11-01", None, now=now, tz=tz).whole_month is None
    with pytest.raises(Unprocessable):
        parse_period("2026-02-30", None, None, now=now, tz=tz)
