"""Who is on duty: shifts, overrides, leave, and the gaps they leave (pure, no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from routing.duty import Leave, Override, describe_gaps, duty_at, gaps
from routing.roster import ShiftSpec

TZ = ZoneInfo("Asia/Shanghai")
A, B, C = "+8613800000001", "+8613800000002", "+8613800000003"
# Weekdays 08:00-18:00 A; every day 18:00-22:00 B.
SHIFTS = [
    ShiftSpec(
        A, datetime(2026, 1, 5, 8), datetime(2026, 1, 5, 18), "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
    ),
    ShiftSpec(B, datetime(2026, 1, 5, 18), datetime(2026, 1, 5, 22), "FREQ=DAILY"),
]


def at(hour: int, minute: int = 0, day: int = 25) -> datetime:
    """A local time on Wednesday 2026-11-25 (or `day`), as an aware UTC moment."""
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(UTC)


def test_shifts_decide_who_is_on_duty():
    assert duty_at(SHIFTS, now=at(10), tz=TZ).phones == [A]
    assert duty_at(SHIFTS, now=at(19), tz=TZ).phones == [B]
    assert duty_at(SHIFTS, now=at(23), tz=TZ).gap
    assert duty_at(SHIFTS, now=at(10, day=28), tz=TZ).gap  # a Saturday


def test_an_override_replaces_a_shift_for_its_time_only():
    swap = Override(C, datetime(2026, 11, 25, 12), datetime(2026, 11, 25, 15), replaces=A)
    noon = duty_at(SHIFTS, [swap], now=at(13), tz=TZ)
    assert noon.phones == [C] and noon.why[C] == f"replaces {A}"
    assert duty_at(SHIFTS, [swap], now=at(15), tz=TZ).phones == [A]
    extra = Override(C, datetime(2026, 11, 25, 9), datetime(2026, 11, 25, 11))
    assert duty_at(SHIFTS, [extra], now=at(10), tz=TZ).phones == [A, C]


def test_leave_takes_a_member_off_duty():
    away = Leave(A, datetime(2026, 11, 24), datetime(2026, 11, 27))
    answer = duty_at(SHIFTS, leaves=[away], now=at(10), tz=TZ)
    assert answer.gap and answer.why[A] == "on leave"
    assert duty_at(SHIFTS, leaves=[away], now=at(10, day=27), tz=TZ).phones == [A]


def test_gaps_of_a_day_are_exact():
    found = gaps(SHIFTS, day=date(2026, 11, 25), tz=TZ)
    assert describe_gaps(found) == "00:00-08:00, 22:00-24:00"
    weekend = gaps(SHIFTS, day=date(2026, 11, 28), tz=TZ)
    assert describe_gaps(weekend) == "00:00-18:00, 22:00-24:00"
    away = Leave(B, datetime(2026, 11, 25, 20), datetime(2026, 11, 26, 9))
    assert describe_gaps(gaps(SHIFTS, leaves=[away], day=date(2026, 11, 25), tz=TZ)) == (
        "00:00-08:00, 20:00-24:00"
    )
    cover = Override(C, datetime(2026, 11, 25, 22), datetime(2026, 11, 26, 8))
    assert describe_gaps(gaps(SHIFTS, [cover], day=date(2026, 11, 25), tz=TZ)) == "00:00-08:00"
