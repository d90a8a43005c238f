"""Duty rosters: shifts in Asia/Shanghai wall time, `now` in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from routing.roster import (
    InvalidShift,
    ShiftSpec,
    is_on_shift,
    on_shift,
    parse_rrule,
    validate_shift,
)

TZ = ZoneInfo("Asia/Shanghai")  # UTC+8, no daylight saving


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(*args: int) -> datetime:
    return datetime(*args)  # type: ignore[misc]


# 2024-05-06 is a Monday.
DAY_SHIFT = ShiftSpec("+8613800000001", local(2024, 5, 6, 8), local(2024, 5, 6, 17))


def on(spec: ShiftSpec, now: datetime) -> bool:
    return is_on_shift(spec, now=now, tz=TZ)


# ---------------------------------------------------------------- one-off shifts


def test_one_off_shift_in_local_wall_time() -> None:
    # 08:00–17:00 in Shanghai is 00:00–09:00 UTC.
    assert on(DAY_SHIFT, utc(2024, 5, 6, 0, 0))
    assert on(DAY_SHIFT, utc(2024, 5, 6, 8, 59))
    assert not on(DAY_SHIFT, utc(2024, 5, 6, 9, 0))  # the end is exclusive
    assert not on(DAY_SHIFT, utc(2024, 5, 5, 23, 59))
    # Read as UTC wall time it would wrongly cover 17:00 Shanghai.
    assert not on(DAY_SHIFT, utc(2024, 5, 6, 16, 30))


def test_now_in_any_zone_means_the_same_instant() -> None:
    same_instant = utc(2024, 5, 6, 1).astimezone(ZoneInfo("America/New_York"))
    assert on(DAY_SHIFT, same_instant)
    assert on(DAY_SHIFT, datetime(2024, 5, 6, 9, tzinfo=TZ))


def test_one_off_shift_does_not_recur() -> None:
    assert not on(DAY_SHIFT, utc(2024, 5, 7, 1))


# ---------------------------------------------------------------- recurring shifts


WEEKDAYS = ShiftSpec(
    "+8613800000002", local(2024, 5, 6, 8), local(2024, 5, 6, 17), "FREQ=WEEKLY;BYDAY=MO,WE,FR"
)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2024, 5, 8, 2), True),  # Wednesday 10:00
        (utc(2024, 5, 7, 2), False),  # Tuesday
        (utc(2024, 5, 10, 8, 59), True),  # Friday 16:59
        (utc(2024, 5, 10, 9), False),  # Friday 17:00
        (utc(2024, 5, 11, 2), False),  # Saturday
        (utc(2025, 5, 5, 2), True),  # a Monday a year later
        (utc(2024, 5, 5, 2), False),
    ],  # the Sunday before the first shift
)
def test_weekly_rrule(now: datetime, expected: bool) -> None:
    assert on(WEEKDAYS, now) is expected


def test_rrule_prefix_and_lower_case_are_accepted() -> None:
    spec = ShiftSpec("p", local(2024, 5, 6, 8), local(2024, 5, 6, 17), "RRULE:freq=weekly;byday=tu")
    assert on(spec, utc(2024, 5, 7, 2))
    assert not on(spec, utc(2024, 5, 8, 2))


NIGHT = ShiftSpec("+8613800000003", local(2024, 5, 6, 22), local(2024, 5, 7, 6), "RRULE:FREQ=DAILY")


@pytest.mark.parametrize(
    ("now_local", "expected"),
    [
        (local(2024, 5, 6, 21, 59), False),
        (local(2024, 5, 6, 22, 0), True),
        (local(2024, 5, 7, 0, 30), True),  # after midnight, yesterday's shift
        (local(2024, 5, 7, 5, 59), True),
        (local(2024, 5, 7, 6, 0), False),
        (local(2024, 5, 7, 12, 0), False),
        (local(2024, 5, 9, 23, 0), True),
        (local(2024, 5, 10, 3, 0), True),
    ],
)
def test_night_shift_crossing_midnight(now_local: datetime, expected: bool) -> None:
    now = now_local.replace(tzinfo=TZ).astimezone(UTC)
    assert on(NIGHT, now) is expected


def test_weekend_night_shift_crossing_midnight_into_monday() -> None:
    spec = ShiftSpec("p", local(2024, 5, 11, 20), local(2024, 5, 12, 8), "FREQ=WEEKLY;BYDAY=SA,SU")
    sunday_early = datetime(2024, 5, 12, 3, tzinfo=TZ)
    monday_early = datetime(2024, 5, 13, 3, tzinfo=TZ)
    monday_late = datetime(2024, 5, 13, 9, tzinfo=TZ)
    assert on(spec, sunday_early)
    assert on(spec, monday_early)  # Sunday's shift runs until Monday 08:00
    assert not on(spec, monday_late)


def test_until_in_utc() -> None:
    # UNTIL 2024-05-07 23:59:59 UTC is 2024-05-08 07:59:59 in Shanghai: the
    # shifts of the 6th and 7th start before it, the 8th's (08:00) does not.
    spec = ShiftSpec(
        "p", local(2024, 5, 6, 8), local(2024, 5, 6, 17), "FREQ=DAILY;UNTIL=20240507T235959Z"
    )
    assert on(spec, utc(2024, 5, 7, 2))
    assert not on(spec, utc(2024, 5, 8, 2))
    validate_shift(spec, tz=TZ)


def test_until_in_local_time() -> None:
    spec = ShiftSpec(
        "p", local(2024, 5, 6, 8), local(2024, 5, 6, 17), "FREQ=DAILY;UNTIL=20240507T080000"
    )
    assert on(spec, utc(2024, 5, 7, 2))
    assert not on(spec, utc(2024, 5, 8, 2))


def test_count_limits_recurrences() -> None:
    spec = ShiftSpec("p", local(2024, 5, 6, 8), local(2024, 5, 6, 17), "FREQ=DAILY;COUNT=2")
    assert on(spec, utc(2024, 5, 7, 2))
    assert not on(spec, utc(2024, 5, 8, 2))


def test_parse_rrule_returns_a_rule_anchored_at_the_shift_start() -> None:
    rule = parse_rrule("RRULE:FREQ=WEEKLY;BYDAY=MO", dtstart=local(2024, 5, 6, 8), tz=TZ)
    assert rule.after(local(2024, 5, 6, 8)) == local(2024, 5, 13, 8)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "rrule",
    [
        "FREQ=SOMETIMES",
        "garbage",
        "RRULE:",
        "   ",
        "FREQ=DAILY;BYDAY=XX",
        "FREQ=DAILY;COUNT=x",
        "FREQ=DAILY;FOO=1",
        "FREQ=DAILY;BYHOUR=25",
        "FREQ=DAILY;INTERVAL=0",
        "FREQ=DAILY;INTERVAL=-1",
        "FREQ=MINUTELY",
        "FREQ=SECONDLY",
        "FREQ=YEARLY;BYMONTH=13",
        "FREQ=MONTHLY;BYMONTHDAY=32",
        "FREQ=DAILY;UNTIL=2024",
        "FREQ=DAILY;UNTIL=tomorrow",
        "FREQ=DAILY;COUNT=0",  # never occurs
        "FREQ=DAILY;UNTIL=20240101T000000",  # ends before the shift starts
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=31",  # 31 February
        "DTSTART:20240101T000000\nRRULE:FREQ=DAILY",
        "FREQ=DAILY\nEXDATE:20240507T080000",
        "BYDAY=MO",
    ],
)
def test_bad_rrule_is_an_invalid_shift(rrule: str) -> None:
    spec = ShiftSpec("p", local(2024, 5, 6, 8), local(2024, 5, 6, 17), rrule)
    with pytest.raises(InvalidShift):
        validate_shift(spec, tz=TZ)


@pytest.mark.parametrize("ends_at", [local(2024, 5, 6, 8), local(2024, 5, 6, 7)])
def test_shift_must_end_after_it_starts(ends_at: datetime) -> None:
    with pytest.raises(InvalidShift, match="after"):
        validate_shift(ShiftSpec("p", local(2024, 5, 6, 8), ends_at), tz=TZ)


def test_valid_shifts_pass_validation() -> None:
    for spec in (DAY_SHIFT, WEEKDAYS, NIGHT):
        validate_shift(spec, tz=TZ)


def test_a_shift_longer_than_its_interval_still_counts() -> None:
    # A 36-hour shift every day overlaps the next one; both cover the moment.
    spec = ShiftSpec("p", local(2024, 5, 6, 8), local(2024, 5, 7, 20), "FREQ=DAILY")
    assert on(spec, datetime(2024, 5, 9, 19, tzinfo=TZ))


# ---------------------------------------------------------------- on_shift


def test_on_shift_lists_phones_in_roster_order_each_once() -> None:
    now = datetime(2024, 5, 8, 10, tzinfo=TZ)  # Wednesday 10:00
    shifts = [
        WEEKDAYS,
        NIGHT,
        ShiftSpec("+8613800000004", local(2024, 5, 8, 9), local(2024, 5, 8, 12)),
        ShiftSpec(WEEKDAYS.phone, local(2024, 5, 8, 9), local(2024, 5, 8, 11)),
    ]
    assert on_shift(shifts, now=now, tz=TZ) == [WEEKDAYS.phone, "+8613800000004"]


def test_on_shift_is_empty_when_nobody_covers_the_moment() -> None:
    assert on_shift([DAY_SHIFT, WEEKDAYS], now=utc(2024, 5, 7, 2), tz=TZ) == []
    assert on_shift([], now=utc(2024, 5, 7, 2), tz=TZ) == []


def test_on_shift_skips_a_stored_shift_that_does_not_parse() -> None:
    broken = ShiftSpec("+8613800000009", local(2024, 5, 6, 8), local(2024, 5, 6, 17), "FREQ=NEVER")
    now = utc(2024, 5, 6, 2)
    assert on_shift([broken, DAY_SHIFT], now=now, tz=TZ) == [DAY_SHIFT.phone]
    with pytest.raises(InvalidShift):
        is_on_shift(broken, now=now, tz=TZ)


# ---------------------------------------------------------------- long-running rules


def _walked(spec: ShiftSpec, now: datetime) -> bool:
    """The answer from the rule walked from its very first start (no memo, no rebase)."""
    assert spec.rrule
    rule = parse_rrule(spec.rrule, dtstart=spec.starts_at, tz=TZ)
    probe = now.astimezone(TZ).replace(tzinfo=None)
    if rule._dtstart.tzinfo is not None:  # type: ignore[attr-defined]
        probe = probe.replace(tzinfo=TZ)
    start = rule.before(probe, inc=True)
    return start is not None and probe < start + (spec.ends_at - spec.starts_at)


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY",
        "FREQ=WEEKLY;BYDAY=MO,WE,FR",
        "FREQ=MONTHLY;BYMONTHDAY=1,15,31",
        "FREQ=DAILY;UNTIL=20261110T000000Z",
        "FREQ=DAILY;INTERVAL=2",
        "FREQ=DAILY;COUNT=300",
    ],
)
def test_a_rule_started_long_ago_answers_as_walked_from_its_first_start(rule: str) -> None:
    # A night shift crossing midnight, started in January: is_on_shift walks it
    # from its last start before each day (memoised); the answer must not change.
    spec = ShiftSpec("A", local(2026, 1, 5, 20, 30), local(2026, 1, 6, 8, 15), rule)
    ons = 0
    for hour in range(24 * 30):
        at = utc(2026, 11, 1) + timedelta(hours=hour, minutes=17)
        expected = _walked(spec, at)
        assert on(spec, at) == expected, (rule, at)
        ons += expected
    assert ons > 0 or "UNTIL" in rule or "COUNT" in rule
