"""Working time: `3 workdays` on the Chinese public calendar.

Public holidays and the make-up working days (调休) come from the maintained
`chinese-calendar` package, not from a hand-kept list; a year it does not know
yet counts Monday to Friday. Pure: `add_workdays` takes the calendar as a
function, so tests may pass their own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

import chinese_calendar

IsWorkday = Callable[[date], bool]

_WORKDAYS = re.compile(r"^\s*([0-9]+)\s*(?:workdays?|工作日)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class WorkDays:
    """A duration counted in working days."""

    days: int

    def __str__(self) -> str:
        return f"{self.days} workdays"


def parse_workdays(text: str) -> WorkDays | None:
    """`3 workdays`, `1 workday`, `3工作日` → WorkDays; anything else → None."""
    match = _WORKDAYS.match(text) if isinstance(text, str) else None
    return WorkDays(int(match.group(1))) if match else None


def china_is_workday(day: date) -> bool:
    """A working day in mainland China (holidays off, make-up Saturdays/Sundays on)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:  # a year the package has no schedule for yet
        return day.weekday() < 5


def add_workdays(
    start: datetime, span: WorkDays, *, tz: tzinfo, is_workday: IsWorkday = china_is_workday
) -> datetime:
    """The same wall-clock time `span.days` working days after `start` (aware).

    Started on a day off, the count starts at the next working day's midnight:
    a case opened on Saturday with `1 workday` is due at the end of Monday.
    """
    local = start.astimezone(tz).replace(tzinfo=None)
    if not is_workday(local.date()):
        day = local.date()
        while not is_workday(day):
            day += timedelta(days=1)
        local = datetime.combine(day, time())
    for _ in range(span.days):
        local += timedelta(days=1)
        while not is_workday(local.date()):
            local += timedelta(days=1)
    return local.replace(tzinfo=tz).astimezone(start.tzinfo)
