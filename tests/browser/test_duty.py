"""The duty page: who is on shift in each grid of the demo city now and next,
checked against the roster in the database the server reads; phones masked."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from dateutil.rrule import rrulestr
from playwright.sync_api import expect
from sqlalchemy import func, select

from app.importer.demo_city import GRIDS
from app.models.directory import Member, MemberLeave, Region, RosterOverride, Shift
from tests.browser.conftest import Console
from tests.browser.support import Server, screenshot, text

ZH = "zh"
MASKED = re.compile(r"(\S+) (\d{3}\*{4}\d{4})")
FULL_MOBILE = re.compile(r"1[3-9]\d{9}(?!\d)")


def masked(phone: str) -> str:
    """`+8613858000101` → `138****0101`, as the page must show it."""
    national = phone.removeprefix("+86")
    return f"{national[:3]}****{national[-4:]}"


def occurrences(shift: Shift, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The shift's (start, end) wall-clock spans that overlap [start, end)."""
    length = shift.ends_at - shift.starts_at
    if not shift.rrule:
        spans = [(shift.starts_at, shift.ends_at)]
    else:
        rule = rrulestr(shift.rrule, dtstart=shift.starts_at)
        spans = [(s, s + length) for s in rule.between(start - length, end, inc=True)]
    return [(a, b) for a, b in spans if a < end and b > start]


def on_shift(shifts: list[Shift], at: datetime) -> set[str]:
    return {
        s.phone
        for s in shifts
        if any(a <= at < b for a, b in occurrences(s, at, at + timedelta(minutes=1)))
    }


def shown(cell_text: str) -> set[tuple[str, str]]:
    """The (name, masked phone) pairs of a cell: `张伟 138****0101, 王芳 138****0103`."""
    return set(MASKED.findall(cell_text))


def test_the_duty_page_shows_who_is_on_shift_in_each_grid(console: Console, server: Server):
    page = console.page(user="dh-county")
    page.goto("/console/duty")
    expect(page.get_by_role("heading", level=1)).to_contain_text("定海区")
    grid_table = page.locator("#grid-duty")
    expect(grid_table.locator("tbody tr[data-code]")).to_have_count(len(GRIDS))
    screenshot(page, "duty")

    # The page says the moment it answers for (local wall clock, to the minute);
    # the roster's shifts start and end on whole minutes, so that minute decides.
    note = page.locator("p.note").first.inner_text()
    stamp = re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", note)
    assert stamp, note
    at = datetime.strptime(stamp.group(0), "%Y-%m-%d %H:%M")

    with server.session() as s:
        ids = dict(s.execute(select(Region.code, Region.id).where(Region.code.in_(GRIDS))).all())
        # The expectation below is the roster alone: nothing overrides it or is on leave.
        assert not s.scalar(select(func.count(RosterOverride.id)))
        assert not s.scalar(select(func.count(MemberLeave.id)))
        shifts = {
            code: list(s.scalars(select(Shift).where(Shift.unit_id == ids[code]))) for code in GRIDS
        }
        teams = {
            code: {
                m.phone: m.name
                for m in s.scalars(
                    select(Member).where(Member.unit_id == ids[code], Member.active.is_(True))
                )
            }
            for code in GRIDS
        }

    gap_tag = text(ZH, "roster gap: whole team")
    for code in GRIDS:
        row = grid_table.locator(f'tbody tr[data-code="{code}"]')
        team, rostered = teams[code], shifts[code]
        assert rostered, f"the demo city rosters every grid; {code} has no shift"
        now = on_shift(rostered, at)
        # Nobody on shift (the weekend day): the whole team gets the grid's cases.
        expected_now = {(team[p], masked(p)) for p in (now or team)}
        cell = row.locator('[data-col="now"]')
        expect(cell.locator(".phone")).to_have_count(len(expected_now))
        assert shown(cell.inner_text()) == expected_now, (code, at, cell.inner_text())
        if now:
            expect(cell.locator(".tag")).to_have_count(0)
        else:
            expect(cell.locator(".tag")).to_have_text(gap_tag)

        # The next change: the first shift boundary after which someone else is on.
        week = at + timedelta(days=7)
        points = sorted(
            {
                p
                for sh in rostered
                for span in occurrences(sh, at, week)
                for p in span
                if at < p <= week
            }
        )
        change = next((p for p in points if on_shift(rostered, p) != now), None)
        assert change is not None, f"{code}: the demo roster changes within a week"
        expect(row.locator('[data-col="next-at"]')).to_have_text(change.strftime("%m-%d %H:%M"))
        then = on_shift(rostered, change)
        next_cell = row.locator('[data-col="next"]')
        if then:
            assert shown(next_cell.inner_text()) == {(team[p], masked(p)) for p in then}, code
        else:
            expect(next_cell).to_have_text(text(ZH, "nobody on shift"))

    # The offices keep no roster: every duty phone of theirs, masked, and said so.
    county = page.locator('#office-duty tbody tr[data-code="DH"]')
    expect(county).to_contain_text("定海区网格中心值班 139****0001")
    expect(county.locator(".tag")).to_have_text(text(ZH, "no shift: all duty phones"))
    # No phone appears in full anywhere on the page.
    assert not FULL_MOBILE.findall(page.locator("body").inner_text())
