"""Escalation policy: durations, the TOML file of the contract, and deadlines."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any

from routing.workcal import IsWorkday, WorkDays, add_workdays, china_is_workday, parse_workdays


class PolicyError(ValueError):
    pass


_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`45s`, `30m`, `2h`, `3d` → timedelta."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match:
        raise PolicyError(f"bad duration {text!r} (use e.g. 45s, 30m, 2h, 3d)")
    try:
        return timedelta(seconds=float(match.group(1)) * _UNIT[match.group(2)])
    except OverflowError:
        raise PolicyError(f"duration {text!r} is too long") from None


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@dataclass(frozen=True)
class Policy:
    name: str
    claim_within: timedelta
    escalate_after: timedelta
    # Wall-clock time, or working days on the Chinese calendar ("3 workdays").
    resolve_within: timedelta | WorkDays
    # Optional keys. A case the resident reopened ("2") must be claimed sooner:
    # half of `claim_within` unless given.
    reopen_claim_within: timedelta | None = None
    # An unclaimed case at the top of the ladder is re-sent this often.
    resend_every: timedelta = timedelta(minutes=30)
    # The claimant is reminded this long before the resolution deadline.
    remind_before: timedelta | None = None

    @property
    def reopen_claim(self) -> timedelta:
        return self.reopen_claim_within or self.claim_within / 2


@dataclass(frozen=True)
class PriorityRule:
    """Picks `policy` when the text has one of `keywords`, the resident has one
    of `tags`, or the case is of one of `categories`."""

    policy: str
    keywords: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Category:
    """A kind of request (health, safety, …), told by keywords; its `roles` of
    the grid team are texted first."""

    name: str
    keywords: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuietHours:
    """Local hours in which non-urgent notices to `roles` wait (may span midnight)."""

    start: time
    end: time
    roles: tuple[str, ...] = ("volunteer",)

    def holds(self, local: datetime) -> datetime | None:
        """When a notice at `local` (naive wall clock) may go: None if at once."""
        now = local.time()
        if self.start < self.end:
            inside = self.start <= now < self.end
        else:
            inside = now >= self.start or now < self.end
        if not inside:
            return None
        release = datetime.combine(local.date(), self.end)
        return release if release > local else release + timedelta(days=1)


@dataclass(frozen=True)
class PolicySet:
    policies: dict[str, Policy]
    rules: tuple[PriorityRule, ...] = field(default=())
    categories: dict[str, Category] = field(default_factory=dict)
    quiet: QuietHours | None = None

    def categorize(self, text: str) -> str | None:
        """The first category with a keyword in `text`, or None."""
        folded = _fold(text)
        for category in self.categories.values():
            if any(k and _fold(k) in folded for k in category.keywords):
                return category.name
        return None

    def choose(self, text: str, *, tags: Iterable[str] = (), category: str | None = None) -> Policy:
        """The first rule matching the text's keywords, the resident's tags or the
        case's category wins; `normal` otherwise.

        Letters match in any case and width ("ＦＩＲＥ" is "fire").
        """
        folded = _fold(text)
        tagged = {_fold(t) for t in tags if t}
        for rule in self.rules:
            if (
                any(k and _fold(k) in folded for k in rule.keywords)
                or any(_fold(t) in tagged for t in rule.tags)
                or (category is not None and category in rule.categories)
            ):
                return self.policies[rule.policy]
        return self.policies["normal"]


DEFAULT_POLICY_TOML = """
[policies.normal]
claim_within   = "30m"
escalate_after = "60m"
resolve_within = "72h"

[policies.urgent]
claim_within   = "10m"
escalate_after = "20m"
resolve_within = "6h"

[[priority]]
policy   = "urgent"
keywords = ["救命", "着火", "火灾", "溺水", "急救", "台风"]
"""


_POLICY_KEYS = ("claim_within", "escalate_after", "resolve_within")
_OPTIONAL_KEYS = ("reopen_claim_within", "resend_every", "remind_before")
_TOP_KEYS = {"policies", "priority", "categories", "quiet_hours"}


class _At(PolicyError):
    """An error at a table (and key) of the file, located to a line by `parse_policy`."""

    def __init__(self, message: str, *, table: str, key: str | None = None) -> None:
        super().__init__(message)
        self.table = table
        self.key = key


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")


def _line_of(text: str, table: str, key: str | None) -> int | None:
    """The line of `key` in `table` (`priority#2` is the second [[priority]]), else
    of the table's header."""
    current, header_line = "", None
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            name = header.group(2).replace(" ", "").replace('"', "")
            if header.group(1) == "[[":
                seen[name] = seen.get(name, 0) + 1
                name = f"{name}#{seen[name]}"
            current = name
            if name == table:
                header_line = number
            continue
        if current == table and key and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return number
    return header_line


def parse_policy(text: str) -> PolicySet:
    """Parse the TOML escalation policy; raise `PolicyError` naming the line and
    what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"not valid TOML: {exc}") from exc
    try:
        return _parse(data)
    except _At as exc:
        line = _line_of(text, exc.table, exc.key)
        raise PolicyError(f"line {line}: {exc}" if line else str(exc)) from None


def _duration(body: dict[str, Any], key: str, table: str) -> timedelta:
    try:
        return parse_duration(body[key])
    except PolicyError as exc:
        raise _At(f"{table}: {exc}, in {key}", table=table, key=key) from None


def _strings(
    body: dict[str, Any], key: str, table: str, label: str | None = None
) -> tuple[str, ...]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise _At(f"{label or table}: {key} must be a list of strings", table=table, key=key)
    return tuple(value)


def _parse_policy_table(name: str, body: Any) -> Policy:
    table = f"policies.{name}"
    if not isinstance(body, dict):
        raise _At(f"{table} must be a table", table="policies", key=name)
    extra = set(body) - set(_POLICY_KEYS) - set(_OPTIONAL_KEYS)
    if extra:
        raise _At(
            f"{table}: unknown key(s) {', '.join(sorted(extra))}", table=table, key=min(extra)
        )
    for key in _POLICY_KEYS:
        if key not in body:
            raise _At(f"{table}: missing {key}", table=table)
    values: dict[str, Any] = {
        k: _duration(body, k, table) for k in ("claim_within", "escalate_after")
    }
    workdays = parse_workdays(body["resolve_within"])
    values["resolve_within"] = workdays or _duration(body, "resolve_within", table)
    values |= {k: _duration(body, k, table) for k in _OPTIONAL_KEYS if k in body}
    if values["escalate_after"] < values["claim_within"]:
        raise _At(
            f"{table}: escalate_after is before claim_within", table=table, key="escalate_after"
        )
    if "resend_every" in values and values["resend_every"] <= timedelta(0):
        raise _At(f"{table}: resend_every must be more than 0", table=table, key="resend_every")
    return Policy(name=name, **values)


def _parse(data: dict[str, Any]) -> PolicySet:
    raw_policies = data.get("policies")
    if not isinstance(raw_policies, dict) or not raw_policies:
        raise PolicyError("no [policies.NAME] table")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise _At(
            f"unknown top-level key(s): {', '.join(sorted(unknown))}", table="", key=min(unknown)
        )
    policies = {name: _parse_policy_table(name, body) for name, body in raw_policies.items()}
    if "normal" not in policies:
        raise PolicyError("a [policies.normal] table is required")
    categories = _parse_categories(data.get("categories", {}))
    raw_rules = data.get("priority", [])
    if not isinstance(raw_rules, list):
        raise _At(
            "priority must be an array of tables: write [[priority]]", table="", key="priority"
        )
    rules: list[PriorityRule] = []
    for i, rule in enumerate(raw_rules, start=1):
        table = f"priority#{i}"
        if not isinstance(rule, dict):
            raise PolicyError(f"priority rule {i} must be a table")
        extra = set(rule) - {"policy", "keywords", "tags", "categories"}
        if extra:
            raise _At(
                f"priority rule {i}: unknown key(s) {', '.join(sorted(extra))}",
                table=table,
                key=min(extra),
            )
        if rule.get("policy") not in policies:
            raise _At(
                f"priority rule {i}: unknown policy {rule.get('policy')!r}",
                table=table,
                key="policy",
            )
        named = _strings(rule, "categories", table, f"priority rule {i}")
        for category in named:
            if category not in categories:
                raise _At(
                    f"priority rule {i}: unknown category {category!r}",
                    table=table,
                    key="categories",
                )
        rules.append(
            PriorityRule(
                policy=rule["policy"],
                keywords=_strings(rule, "keywords", table, f"priority rule {i}"),
                tags=_strings(rule, "tags", table, f"priority rule {i}"),
                categories=named,
            )
        )
    quiet = _parse_quiet(data.get("quiet_hours"))
    return PolicySet(policies=policies, rules=tuple(rules), categories=categories, quiet=quiet)


def _parse_categories(raw: Any) -> dict[str, Category]:
    if not isinstance(raw, dict):
        raise _At("categories must be tables: write [categories.NAME]", table="", key="categories")
    result: dict[str, Category] = {}
    for name, body in raw.items():
        table = f"categories.{name}"
        if not isinstance(body, dict):
            raise _At(f"{table} must be a table", table="categories", key=name)
        extra = set(body) - {"keywords", "roles"}
        if extra:
            raise _At(
                f"{table}: unknown key(s) {', '.join(sorted(extra))}", table=table, key=min(extra)
            )
        result[name] = Category(
            name, _strings(body, "keywords", table), _strings(body, "roles", table)
        )
    return result


def _clock_time(body: dict[str, Any], key: str) -> time:
    value = body.get(key)
    try:
        hour, minute = str(value).split(":")
        return time(int(hour), int(minute))
    except ValueError:
        raise _At(
            f"quiet_hours: {key} must be HH:MM, not {value!r}", table="quiet_hours", key=key
        ) from None


def _parse_quiet(raw: Any) -> QuietHours | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _At("quiet_hours must be a table", table="", key="quiet_hours")
    extra = set(raw) - {"start", "end", "roles"}
    if extra:
        raise _At(
            f"quiet_hours: unknown key(s) {', '.join(sorted(extra))}",
            table="quiet_hours",
            key=min(extra),
        )
    roles = _strings(raw, "roles", "quiet_hours") if "roles" in raw else ("volunteer",)
    start, end = _clock_time(raw, "start"), _clock_time(raw, "end")
    if start == end:
        raise _At("quiet_hours: start and end are the same", table="quiet_hours", key="end")
    return QuietHours(start=start, end=end, roles=roles)


def default_policy() -> PolicySet:
    """The built-in policy of DESIGN.md, used when no policy file is given."""
    return parse_policy(DEFAULT_POLICY_TOML)


@dataclass(frozen=True)
class Deadlines:
    claim_due_at: datetime
    escalate_due_at: datetime
    resolve_due_at: datetime


def deadlines_for(
    policy: Policy,
    *,
    opened_at: datetime,
    tz: tzinfo = UTC,
    is_workday: IsWorkday = china_is_workday,
    reopened: bool = False,
) -> Deadlines:
    """Deadlines run from the moment the case opens (or is reopened); working
    days count on the calendar in the service's zone `tz`. A case the resident
    reopened must be claimed within `reopen_claim`, and the escalation moves
    up by as much (the town keeps the same window after the claim deadline)."""
    resolve = policy.resolve_within
    if isinstance(resolve, WorkDays):
        resolve_due = add_workdays(opened_at, resolve, tz=tz, is_workday=is_workday)
    else:
        resolve_due = opened_at + resolve
    shift = policy.reopen_claim - policy.claim_within if reopened else timedelta(0)
    return Deadlines(
        claim_due_at=opened_at + policy.claim_within + shift,
        escalate_due_at=opened_at + policy.escalate_after + shift,
        resolve_due_at=resolve_due,
    )


def reminder_at(policy: Policy, *, resolve_due_at: datetime, now: datetime) -> datetime | None:
    """When the claimant is reminded of the resolution deadline: `remind_before`
    it, if that is still ahead; None: no reminder."""
    if policy.remind_before is None:
        return None
    at = resolve_due_at - policy.remind_before
    return at if at > now else None


def after_escalation(policy: Policy, *, to_level: str, now: datetime) -> tuple[str, datetime]:
    """The step an escalation to `to_level` schedules: at the town, the rest of
    the claim window before the county is told (`escalate`); higher up, the
    top of the ladder is never silent: re-sent until claimed (`resend`)."""
    if to_level == "town":
        return "escalate", now + (policy.escalate_after - policy.claim_within)
    return "resend", now + policy.resend_every


_SNAPSHOT_KEYS = (
    "claim_within",
    "escalate_after",
    "reopen_claim_within",
    "resend_every",
    "remind_before",
)


def policy_snapshot(policy: Policy) -> dict[str, Any]:
    """The policy as plain data, kept on a case so that it keeps its policy
    when the file changes."""
    data: dict[str, Any] = {"name": policy.name}
    for key in _SNAPSHOT_KEYS:
        value = getattr(policy, key)
        data[key] = value.total_seconds() if value is not None else None
    resolve = policy.resolve_within
    data["resolve_within"] = (
        str(resolve) if isinstance(resolve, WorkDays) else resolve.total_seconds()
    )
    return data


def policy_from_snapshot(data: dict[str, Any]) -> Policy:
    values: dict[str, Any] = {
        key: timedelta(seconds=data[key]) for key in _SNAPSHOT_KEYS if data.get(key) is not None
    }
    resolve = data["resolve_within"]
    values["resolve_within"] = (
        parse_workdays(resolve) if isinstance(resolve, str) else timedelta(seconds=resolve)
    )
    return Policy(name=data["name"], **values)
