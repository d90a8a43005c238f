"""Who is on duty: the roster's shifts, one-off overrides and members' leave.

Pure: plain data and an explicit `now` in, a decision with its evidence out.
Shifts, overrides and leave are naive wall-clock times in the service's zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from routing.roster import InvalidShift, ShiftSpec, is_on_shift, parse_rrule


@dataclass(frozen=True)
class Override:
    """`phone` is on duty in [starts_at, ends_at), in place of `replaces` if given."""

    phone: str
    starts_at: datetime
    ends_at: datetime
    replaces: str | None = None


@dataclass(frozen=True)
class Leave:
    phone: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class Duty:
    """The phones on duty, in roster order, and why each is (or is not)."""

    phones: list[str]
    why: dict[str, str] = field(default_factory=dict)

    @property
    def gap(self) -> bool:
        return not self.phones


def _local(now: datetime, tz: tzinfo) -> datetime:
    return now.astimezone(tz).replace(tzinfo=None)


def duty_at(
    shifts: Sequence[ShiftSpec],
    overrides: Sequence[Override] = (),
    leaves: Sequence[Leave] = (),
    *,
    now: datetime,
    tz: tzinfo,
) -> Duty:
    """Who is on duty at `now` (aware): those on shift, minus those an override
    replaces, plus the overrides' phones, minus anyone on leave."""
    local = _local(now, tz)
    why: dict[str, str] = {}
    for spec in shifts:
        try:
            if spec.phone not in why and is_on_shift(spec, now=now, tz=tz):
                why[spec.phone] = "shift"
        except InvalidShift:
            continue
    for override in overrides:
        if not override.starts_at <= local < override.ends_at:
            continue
        if override.replaces and why.pop(override.replaces, None) is not None:
            why[override.phone] = f"replaces {override.replaces}"
        elif override.replaces:
            why[override.phone] = f"replaces {override.replaces} (who was not on shift)"
        else:
            why[override.phone] = "override"
    away = {leave.phone for leave in leaves if leave.starts_at <= local < leave.ends_at}
    phones = [p for p in why if p not in away]
    for phone in away & set(why):
        why[phone] = "on leave"
    return Duty(phones=phones, why=why)


def on_leave(leaves: Sequence[Leave], *, now: datetime, tz: tzinfo) -> set[str]:
    local = _local(now, tz)
    return {leave.phone for leave in leaves if leave.starts_at <= local < leave.ends_at}


def _boundaries(
    shifts: Sequence[ShiftSpec],
    overrides: Sequence[Override],
    leaves: Sequence[Leave],
    *,
    start: datetime,
    end: datetime,
    tz: tzinfo,
) -> list[datetime]:
    """Every local moment in [start, end) at which who is on duty may change."""
    points = {start}
    for spec in shifts:
        duration = spec.ends_at - spec.starts_at
        starts = [spec.starts_at]
        if spec.rrule:
            try:
                rule = parse_rrule(spec.rrule, dtstart=spec.starts_at, tz=tz)
            except InvalidShift:
                continue
            low, high = start - duration, end
            if rule._dtstart.tzinfo is not None:  # type: ignore[attr-defined]
                low, high = low.replace(tzinfo=tz), high.replace(tzinfo=tz)
            starts = [o.replace(tzinfo=None) for o in rule.between(low, high, inc=True)]
        for begin in starts:
            points.update((begin, begin + duration))
    for override in overrides:
        points.update((override.starts_at, override.ends_at))
    for leave in leaves:
        points.update((leave.starts_at, leave.ends_at))
    return sorted(p for p in points if start <= p < end)


def gaps(
    shifts: Sequence[ShiftSpec],
    overrides: Sequence[Override] = (),
    leaves: Sequence[Leave] = (),
    *,
    day: date,
    tz: tzinfo,
) -> list[tuple[datetime, datetime]]:
    """The local intervals of `day` during which nobody is on duty (exact:
    duty can only change where a shift, override or leave starts or ends)."""
    start = datetime.combine(day, time())
    return gaps_between(
        shifts, overrides, leaves, start=start, end=start + timedelta(days=1), tz=tz
    )


def gaps_between(
    shifts: Sequence[ShiftSpec],
    overrides: Sequence[Override] = (),
    leaves: Sequence[Leave] = (),
    *,
    start: datetime,
    end: datetime,
    tz: tzinfo,
) -> list[tuple[datetime, datetime]]:
    """The local intervals of [start, end) (naive, wall clock) with nobody on duty."""
    points = _boundaries(shifts, overrides, leaves, start=start, end=end, tz=tz)
    result: list[tuple[datetime, datetime]] = []
    for begin, finish in zip(points, [*points[1:], end], strict=True):
        duty = duty_at(shifts, overrides, leaves, now=begin.replace(tzinfo=tz), tz=tz)
        if not duty.gap:
            continue
        if result and result[-1][1] == begin:
            result[-1] = (result[-1][0], finish)
        else:
            result.append((begin, finish))
    return result


def next_change(
    shifts: Sequence[ShiftSpec],
    overrides: Sequence[Override] = (),
    leaves: Sequence[Leave] = (),
    *,
    now: datetime,
    tz: tzinfo,
    horizon: timedelta = timedelta(days=7),
) -> tuple[datetime, Duty] | None:
    """The first moment after `now` (aware) within `horizon` at which who is on
    duty changes, as a local wall-clock time, and who is on duty from then.
    None when nothing changes (or nobody is ever rostered)."""
    local = _local(now, tz)
    current = set(duty_at(shifts, overrides, leaves, now=now, tz=tz).phones)
    points = _boundaries(shifts, overrides, leaves, start=local, end=local + horizon, tz=tz)
    for point in points:
        if point <= local:
            continue
        then = duty_at(shifts, overrides, leaves, now=point.replace(tzinfo=tz), tz=tz)
        if set(then.phones) != current:
            return point, then
    return None


def describe_gaps(found: Sequence[tuple[datetime, datetime]]) -> str:
    """`00:00-08:00, 18:00-24:00`."""

    def hhmm(moment: datetime, *, end: bool) -> str:
        if end and moment.time() == time():
            return "24:00"
        return moment.strftime("%H:%M")

    return ", ".join(f"{hhmm(a, end=False)}-{hhmm(b, end=True)}" for a, b in found)
