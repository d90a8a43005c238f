"""`/console/duty`: who is on duty now and next per grid, roster gaps of the
next 7 days, phones our SMS did not reach; masked phones; the office's area."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.db import unit_of_work
from app.models.directory import Region
from app.models.messages import OutboundMessage
from app.runtime import Runtime
from routing.duty import next_change
from routing.roster import ShiftSpec
from tests.api.conftest import HN_WORKER, PT_WORKER
from tests.console.report_helpers import tables
from tests.factories import WORKER_A, WORKER_B, WORKER_C, make_shift

TZ_NOW = "2026-11-25 10:00"  # the clock fixture: Wednesday 10:00 in Zhoushan


def outbox_row(phone: str, *, at: datetime, status: str, delivery: str | None = None,
               error: str | None = None) -> OutboundMessage:  # fmt: skip
    return OutboundMessage(
        to_phone=phone,
        template="forward",
        params={},
        locale="zh",
        body="#1234 楼道灯坏了",
        status=status,
        delivery_status=delivery,
        error_code=error,
        error_message=f"unreachable {phone}" if error else None,
        next_attempt_at=at,
        created_at=at,
    )


@pytest.fixture
def duty_area(rt: Runtime, city, clock):
    """DH-HN-01: 孙丽 on a one-off shift 09:00–12:00 today. Outbox: undelivered
    SMS to 张伟 (DH-01) twice, 王强 (DH-02) once, 李娜 (DH-01) 10 days ago, and
    to 赵敏 of the other county; a delivered one to 张伟."""
    now = clock.now
    with unit_of_work(rt.sessions) as session:
        hn01 = session.scalar(select(Region).where(Region.code == "DH-HN-01"))
        make_shift(
            session,
            unit=hn01,
            phone=HN_WORKER,
            starts_at=datetime(2026, 11, 25, 9),
            ends_at=datetime(2026, 11, 25, 12),
        )
        session.add_all(
            [
                outbox_row(WORKER_A, at=now - timedelta(days=2), status="failed", error="30003"),
                outbox_row(WORKER_A, at=now - timedelta(hours=1), status="sent",
                           delivery="undelivered", error="30005"),
                outbox_row(WORKER_A, at=now - timedelta(hours=2), status="sent",
                           delivery="delivered"),
                outbox_row(WORKER_C, at=now - timedelta(hours=3), status="sent",
                           delivery="failed"),
                outbox_row(WORKER_B, at=now - timedelta(days=10), status="failed"),
                outbox_row(PT_WORKER, at=now - timedelta(hours=1), status="failed"),
            ]
        )  # fmt: skip
    return city


def test_town_duty_now_next_and_gaps(browser, rt, duty_area):
    town = browser("DH-JF", "viewer")
    r = town.get("/console/duty")
    assert r.status_code == 200, r.text
    t = tables(r.text)
    grids = t["grid-duty"].by_code()
    assert set(grids) == {"DH-01", "DH-02"}  # DH-HN-01 is another town
    # DH-01: 张伟 on the weekday day shift until 18:00, then nobody.
    now_cell, next_at, then = grids["DH-01"][2], grids["DH-01"][3], grids["DH-01"][4]
    assert now_cell == "张伟 138****0001"
    assert next_at == "11-25 18:00"
    assert then in ("nobody on shift", "无人值班")
    # DH-02 keeps no roster: its whole team gets cases.
    assert grids["DH-02"][2].startswith("王强 138****0003")
    assert grids["DH-02"][3] == "—"
    # Gaps of the next 7 days from now (Wednesday 10:00): every weekday night and the weekend.
    gaps = t["roster-gaps"].by_code()
    assert list(gaps) == ["DH-01"]
    assert gaps["DH-01"][1] == (
        "11-25 18:00–11-26 08:00, 11-26 18:00–11-27 08:00, 11-27 18:00–11-30 08:00, "
        "11-30 18:00–12-01 08:00, 12-01 18:00–12-02 08:00"
    )
    assert "DH-02" in r.text[r.text.index('id="unrostered"') :]
    # The town office itself: its duty phone, as nobody is rostered there.
    offices = t["office-duty"].by_code()
    assert list(offices) == ["DH-JF"] and "街道值班 139****0010" in offices["DH-JF"][1]
    # No phone is shown whole.
    for number in (WORKER_A, WORKER_B, WORKER_C, "13800000001", "13900000010"):
        assert number not in r.text


def test_county_duty_covers_its_towns(browser, rt, duty_area):
    county = browser("DH", "viewer")
    r = county.get("/console/duty")
    t = tables(r.text)
    assert set(t["grid-duty"].by_code()) == {"DH-01", "DH-02", "DH-HN-01"}
    hn = t["grid-duty"].by_code()["DH-HN-01"]
    assert hn[2] == "孙丽 138****0041" and hn[3] == "11-25 12:00"
    assert list(t["office-duty"].by_code()) == ["DH", "DH-HN", "DH-JF"]
    narrowed = tables(county.get("/console/duty", unit="DH-HN").text)
    assert list(narrowed["grid-duty"].by_code()) == ["DH-HN-01"]


def test_undelivered_phones_of_the_area(browser, rt, duty_area):
    town = browser("DH-JF", "viewer")
    rows = tables(town.get("/console/duty").text)["undelivered"].rows
    by_phone = {row[0]: row for row in rows}
    assert set(by_phone) == {"138****0001", "138****0003"}  # not 赵敏 (PT), not the old one
    assert by_phone["138****0001"][2] == "2" and "张伟" in by_phone["138****0001"][1]
    assert by_phone["138****0001"][4].startswith("undelivered: 30005")
    assert "13800000001" not in by_phone["138****0001"][4]  # the error text is masked
    assert by_phone["138****0003"][2] == "1"
    assert [row[0] for row in rows] == ["138****0001", "138****0003"]  # most first
    longer = tables(town.get("/console/duty", days="14").text)["undelivered"].rows
    assert {row[0] for row in longer} == {"138****0001", "138****0002", "138****0003"}


def test_neighbouring_office_and_bad_input(browser, rt, duty_area):
    pt = browser("PT-SJM", "viewer")
    own = pt.get("/console/duty")
    assert own.status_code == 200
    t = tables(own.text)
    assert list(t["grid-duty"].by_code()) == ["PT-01"]
    assert [row[0] for row in t["undelivered"].rows] == ["138****0031"]
    assert "DH-" not in own.text.split("<main>")[1] and "张伟" not in own.text
    assert pt.get("/console/duty", unit="DH-JF").status_code == 404
    assert pt.get("/console/duty", unit="DH").status_code == 404
    for days in ("0", "91", "x", "-1", "1e3"):
        r = pt.get("/console/duty", days=days)
        assert r.status_code == 422 and "days" in r.text, days
    assert pt.get("/console/duty", unit="PT-01").status_code == 422  # a grid is not a unit here


def test_next_change_is_the_first_moment_duty_differs():
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    day = ShiftSpec("A", datetime(2026, 1, 5, 8), datetime(2026, 1, 5, 18), "FREQ=DAILY")
    night = ShiftSpec("B", datetime(2026, 1, 5, 18), datetime(2026, 1, 6, 8), "FREQ=DAILY")
    now = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 local
    at, duty = next_change([day, night], now=now, tz=tz)
    assert at == datetime(2026, 11, 25, 18) and duty.phones == ["B"]
    # A boundary where nothing changes (A's shift ends as A's next begins) is skipped.
    back_to_back = ShiftSpec("A", datetime(2026, 1, 5, 0), datetime(2026, 1, 6, 0), "FREQ=DAILY")
    assert next_change([back_to_back], now=now, tz=tz) is None
    assert next_change([], now=now, tz=tz) is None


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY",
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        "RRULE:FREQ=WEEKLY",
        "FREQ=MONTHLY;BYMONTHDAY=25,31",
        "FREQ=DAILY;UNTIL=20261128T000000Z",
        "FREQ=DAILY;INTERVAL=3",  # left as it is: the phase counts from the start
        "FREQ=DAILY;COUNT=400",  # left as it is: the count runs from the start
    ],
)
def test_a_rebased_shift_answers_like_the_original(rule):
    from zoneinfo import ZoneInfo

    from routing.roster import is_on_shift, rebased

    tz = ZoneInfo("Asia/Shanghai")
    spec = ShiftSpec("A", datetime(2026, 1, 5, 17, 30), datetime(2026, 1, 6, 8, 30), rule)
    since = datetime(2026, 11, 20)
    moved = rebased(spec, since=since, tz=tz)
    if "INTERVAL=3" in rule or "COUNT" in rule:
        assert moved == spec
    else:
        assert moved.starts_at > datetime(2026, 10, 1) and moved.ends_at - moved.starts_at == (
            spec.ends_at - spec.starts_at
        )
    for hour in range(0, 24 * 21, 1):
        at = (since + timedelta(hours=hour, minutes=29)).replace(tzinfo=tz)
        assert is_on_shift(moved, now=at, tz=tz) == is_on_shift(spec, now=at, tz=tz), (rule, at)
