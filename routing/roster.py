"""Duty rosters: who of a unit is on shift at a moment.

Shifts are wall-clock times in the service's zone, optionally recurring by an
RFC 5545 RRULE, expanded with python-dateutil.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache

from dateutil.rrule import rrule, rrulestr

log = logging.getLogger("gridline.roster")


class InvalidShift(ValueError):
    pass


@dataclass(frozen=True)
class ShiftSpec:
    phone: str
    starts_at: datetime  # naive, wall clock in the service's zone
    ends_at: datetime
    rrule: str | None = None


# Shifts recur by the day or longer; finer rules would make every lookup walk
# millions of occurrences (and INTERVAL=0 never ends in dateutil).
_FREQS = {"DAILY", "WEEKLY", "MONTHLY", "YEARLY"}
_UNTIL = re.compile(r"^\d{8}(?:T\d{6}Z?)?$")
_RANGES = {
    "BYMONTH": (1, 12),
    "BYMONTHDAY": (-31, 31),
    "BYYEARDAY": (-366, 366),
    "BYWEEKNO": (-53, 53),
    "BYSETPOS": (-366, 366),
}
# A rule must occur within this span of its start, or it never really does.
_HORIZON = timedelta(days=3660)


def _check_parts(body: str, text: str) -> bool:
    """Check what dateutil lets through; True when UNTIL is in UTC (`Z`)."""
    parts: dict[str, str] = {}
    for item in body.split(";"):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InvalidShift(f"bad RRULE {text!r}: {item!r} is not NAME=VALUE")
        parts[name.strip().upper()] = value.strip().upper()
    freq = parts.get("FREQ")
    if freq not in _FREQS:
        raise InvalidShift(f"bad RRULE {text!r}: FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY")
    if "INTERVAL" in parts and not (parts["INTERVAL"].isdigit() and int(parts["INTERVAL"]) >= 1):
        raise InvalidShift(f"bad RRULE {text!r}: INTERVAL must be a positive whole number")
    for name, (low, high) in _RANGES.items():
        for value in filter(None, parts.get(name, "").split(",")):
            try:
                number = int(value)
            except ValueError:
                raise InvalidShift(f"bad RRULE {text!r}: {name}={value}") from None
            if number == 0 or not low <= number <= high:
                raise InvalidShift(f"bad RRULE {text!r}: {name}={value} is out of range")
    until = parts.get("UNTIL")
    if until is not None and not _UNTIL.match(until):
        raise InvalidShift(f"bad RRULE {text!r}: UNTIL must be YYYYMMDD or YYYYMMDDTHHMMSS[Z]")
    return bool(until and until.endswith("Z"))


def parse_rrule(text: str, *, dtstart: datetime, tz: tzinfo) -> rrule:
    """Parse an RRULE (with or without the `RRULE:` prefix) anchored at `dtstart`.

    `dtstart` is naive local time. A rule whose UNTIL is written in UTC (`Z`)
    needs an aware start (RFC 5545), so it is anchored at `dtstart` in `tz`.
    Raise `InvalidShift` for anything else than one daily-or-longer rule.
    """
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:].strip()
    if not body:
        raise InvalidShift("empty RRULE")
    # One rule, no DTSTART/EXDATE lines: the shift's own start anchors it.
    if ":" in body or "\n" in body or "\r" in body:
        raise InvalidShift(f"RRULE must be a single rule line: {text!r}")
    utc_until = _check_parts(body, text)
    anchor = dtstart.replace(tzinfo=tz) if utc_until else dtstart
    try:
        rule = rrulestr(body, dtstart=anchor)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidShift(f"bad RRULE {text!r}: {exc}") from exc
    if not isinstance(rule, rrule):
        raise InvalidShift(f"RRULE must be a single rule: {text!r}")
    return rule


def validate_shift(spec: ShiftSpec, *, tz: tzinfo) -> None:
    """Raise `InvalidShift` unless the shift ends after it starts and its RRULE
    parses and occurs at least once."""
    if spec.ends_at <= spec.starts_at:
        raise InvalidShift("ends_at must be after starts_at")
    if spec.rrule:
        rule = parse_rrule(spec.rrule, dtstart=spec.starts_at, tz=tz)
        first = rule._dtstart  # type: ignore[attr-defined]
        if rule.before(first + _HORIZON, inc=True) is None:
            raise InvalidShift(f"RRULE {spec.rrule!r} never occurs after {spec.starts_at}")


def is_on_shift(spec: ShiftSpec, *, now: datetime, tz: tzinfo) -> bool:
    """True when `now` (aware) falls inside the shift or one of its recurrences."""
    local = now.astimezone(tz).replace(tzinfo=None)
    duration = spec.ends_at - spec.starts_at
    text = spec.rrule
    if not text:
        return spec.starts_at <= local < spec.ends_at
    # Walk the rule from its last start before today, not from its first one
    # (a daily rule from January is 300+ steps by November): the same answer
    # (`rebased`), and both steps are memoised, so a day's lookups reuse them.
    spec = rebased(spec, since=local.replace(hour=0, minute=0, second=0, microsecond=0), tz=tz)
    rule = _parsed(text, spec.starts_at, tz)
    probe: datetime = local
    if rule._dtstart.tzinfo is not None:  # type: ignore[attr-defined]
        probe = local.replace(tzinfo=tz)
    start = rule.before(probe, inc=True)
    if start is None:
        return False
    return probe < start + duration


def rebased(spec: ShiftSpec, *, since: datetime, tz: tzinfo) -> ShiftSpec:
    """The same shift, anchored at its last occurrence at or before `since`
    (naive local): lookups after `since` then skip walking the rule from its
    first occurrence (a daily rule from January is 300+ steps by November).

    Only a rule whose later occurrences do not depend on where it starts
    counting is moved: INTERVAL 1 and no COUNT. Any other rule, one that does
    not parse, or one with no occurrence by `since` is returned as it is.
    """
    if not spec.rrule or spec.starts_at >= since:
        return spec
    start = _last_occurrence(spec.rrule, spec.starts_at, since, tz)
    if start is None or start == spec.starts_at:
        return spec
    return ShiftSpec(spec.phone, start, start + (spec.ends_at - spec.starts_at), spec.rrule)


@lru_cache(maxsize=4096)
def _parsed(text: str, dtstart: datetime, tz: tzinfo) -> rrule:
    """`parse_rrule`, memoised: a parsed rule is only read afterwards (no
    occurrence cache), so one object serves every thread. A rule that does not
    parse raises each time."""
    return parse_rrule(text, dtstart=dtstart, tz=tz)


@lru_cache(maxsize=4096)
def _last_occurrence(text: str, dtstart: datetime, since: datetime, tz: tzinfo) -> datetime | None:
    parts = {
        name.strip().upper(): value.strip()
        for name, _sep, value in (item.partition("=") for item in text.upper().split(";"))
    }
    parts = {k.removeprefix("RRULE:"): v for k, v in parts.items()}
    if "COUNT" in parts or parts.get("INTERVAL", "1") not in ("", "1"):
        return None
    try:
        rule = parse_rrule(text, dtstart=dtstart, tz=tz)
    except InvalidShift:
        return None
    aware = rule._dtstart.tzinfo is not None  # type: ignore[attr-defined]
    found = rule.before(since.replace(tzinfo=tz) if aware else since, inc=True)
    return found.replace(tzinfo=None) if found is not None else None


def on_shift(shifts: Iterable[ShiftSpec], *, now: datetime, tz: tzinfo) -> list[str]:
    """Phones on shift at `now`, in roster order, each once.

    A stored shift that does not parse is skipped (and logged) rather than
    keeping the whole unit from being routed to.
    """
    seen: dict[str, None] = {}
    for spec in shifts:
        if spec.phone in seen:
            continue
        try:
            if is_on_shift(spec, now=now, tz=tz):
                seen[spec.phone] = None
        except InvalidShift as exc:
            log.warning("skipping a shift that does not parse: %s", exc)
    return list(seen)
