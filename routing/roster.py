"""Duty rosters: who of a unit is on shift at a moment.

Shifts are wall-clock times in the service's zone, optionally recurring by an
RFC 5545 RRULE, expanded with python-dateutil.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from dateutil.rrule import rrule, rrulestr


class InvalidShift(ValueError):
    pass


@dataclass(frozen=True)
class ShiftSpec:
    phone: str
    starts_at: datetime  # naive, wall clock in the service's zone
    ends_at: datetime
    rrule: str | None = None


def parse_rrule(text: str, *, dtstart: datetime, tz: tzinfo) -> rrule:
    """Parse an RRULE (with or without the `RRULE:` prefix) anchored at `dtstart`.

    `dtstart` is naive local time. A rule whose UNTIL is written in UTC (`Z`)
    needs an aware start, so that form is tried second.
    """
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if not body:
        raise InvalidShift("empty RRULE")
    try:
        rule = rrulestr(body, dtstart=dtstart)
    except (ValueError, TypeError) as first:
        try:
            rule = rrulestr(body, dtstart=dtstart.replace(tzinfo=tz))
        except (ValueError, TypeError):
            raise InvalidShift(f"bad RRULE {text!r}: {first}") from first
    if not isinstance(rule, rrule):
        raise InvalidShift(f"RRULE must be a single rule: {text!r}")
    return rule


def validate_shift(spec: ShiftSpec, *, tz: tzinfo) -> None:
    if spec.ends_at <= spec.starts_at:
        raise InvalidShift("ends_at must be after starts_at")
    if spec.rrule:
        parse_rrule(spec.rrule, dtstart=spec.starts_at, tz=tz)


def is_on_shift(spec: ShiftSpec, *, now: datetime, tz: tzinfo) -> bool:
    """True when `now` (aware) falls inside the shift or one of its recurrences."""
    local = now.astimezone(tz).replace(tzinfo=None)
    duration = spec.ends_at - spec.starts_at
    if not spec.rrule:
        return spec.starts_at <= local < spec.ends_at
    rule = parse_rrule(spec.rrule, dtstart=spec.starts_at, tz=tz)
    probe: datetime = local
    if rule._dtstart.tzinfo is not None:  # type: ignore[attr-defined]
        probe = local.replace(tzinfo=tz)
    start = rule.before(probe, inc=True)
    if start is None:
        return False
    return probe < start + duration


def on_shift(shifts: Iterable[ShiftSpec], *, now: datetime, tz: tzinfo) -> list[str]:
    """Phones on shift at `now`, in roster order, each once."""
    seen: dict[str, None] = {}
    for spec in shifts:
        if spec.phone not in seen and is_on_shift(spec, now=now, tz=tz):
            seen[spec.phone] = None
    return list(seen)
