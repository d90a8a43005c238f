"""Escalation policy: durations, the TOML file of DESIGN.md, deadlines."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from routing.policy import (
    Policy,
    PolicyError,
    after_escalation,
    deadlines_for,
    default_policy,
    parse_duration,
    parse_policy,
    reminder_at,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
        ("72h", timedelta(days=3)),
        (" 10m ", timedelta(minutes=10)),
        ("1.5h", timedelta(minutes=90)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "30",
        "m",
        "30x",
        "30 minutes",
        "-5m",
        "1e3m",
        "2w",
        "h2",
        "٣m",
        "99999999999999999999d",
        30,
        None,
        1.5,
    ],
)
def test_bad_duration(text: object) -> None:
    with pytest.raises(PolicyError, match="duration"):
        parse_duration(text)  # type: ignore[arg-type]


# ---------------------------------------------------------------- defaults


def test_default_policy_matches_the_design() -> None:
    policies = default_policy()
    assert set(policies.policies) == {"normal", "urgent"}
    normal, urgent = policies.policies["normal"], policies.policies["urgent"]
    assert (normal.claim_within, normal.escalate_after, normal.resolve_within) == (
        timedelta(minutes=30),
        timedelta(minutes=60),
        timedelta(hours=72),
    )
    assert (urgent.claim_within, urgent.escalate_after, urgent.resolve_within) == (
        timedelta(minutes=10),
        timedelta(minutes=20),
        timedelta(hours=6),
    )
    assert [r.policy for r in policies.rules] == ["urgent"]
    assert set(policies.rules[0].keywords) == {"救命", "着火", "火灾", "溺水", "急救", "台风"}


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("救命！有人落水", "urgent"),
        ("3幢着火了", "urgent"),
        ("台风把树刮倒了", "urgent"),
        ("路灯坏了", "normal"),
        ("", "normal"),
    ],
)
def test_default_policy_chooses_by_keyword(text: str, policy: str) -> None:
    assert default_policy().choose(text).name == policy


# ---------------------------------------------------------------- TOML

BASE = """
[policies.normal]
claim_within   = "30m"
escalate_after = "60m"
resolve_within = "72h"

[policies.urgent]
claim_within   = "10m"
escalate_after = "20m"
resolve_within = "6h"

[policies.elderly]
claim_within   = "15m"
escalate_after = "45m"
resolve_within = "24h"
"""


def test_first_matching_rule_wins() -> None:
    policies = parse_policy(
        BASE
        + """
[[priority]]
policy = "elderly"
keywords = ["独居老人", "老人"]

[[priority]]
policy = "urgent"
keywords = ["着火", "老人摔倒"]
"""
    )
    assert policies.choose("独居老人家里着火了").name == "elderly"
    assert policies.choose("老人摔倒了").name == "elderly"  # rule 1 matches "老人" first
    assert policies.choose("厨房着火").name == "urgent"
    assert policies.choose("噪音扰民").name == "normal"
    assert policies.policies["elderly"].resolve_within == timedelta(hours=24)


def test_keywords_match_in_any_case() -> None:
    policies = parse_policy(BASE + '[[priority]]\npolicy = "urgent"\nkeywords = ["fire"]\n')
    assert policies.choose("FIRE in building 3").name == "urgent"
    assert policies.choose("ＦＩＲＥ").name == "urgent"
    assert policies.choose("a fir e").name == "normal"


def test_no_rules_means_normal_for_everything() -> None:
    assert parse_policy(BASE).choose("救命").name == "normal"


def test_missing_normal_is_named() -> None:
    with pytest.raises(PolicyError, match=r"policies\.normal"):
        parse_policy(
            '[policies.urgent]\nclaim_within="1m"\nescalate_after="2m"\nresolve_within="3m"\n'
        )


def test_unknown_policy_in_rule_is_named() -> None:
    with pytest.raises(PolicyError, match=r"priority rule 2: unknown policy 'vip'"):
        parse_policy(
            BASE + '[[priority]]\npolicy="urgent"\n[[priority]]\npolicy="vip"\nkeywords=["x"]\n'
        )


def test_bad_toml_is_named() -> None:
    with pytest.raises(PolicyError, match="not valid TOML"):
        parse_policy("[policies.normal\nclaim_within = 30m")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (BASE.replace('resolve_within = "72h"', ""), r"policies\.normal: missing resolve_within"),
        (BASE.replace('"30m"', '"30 minutes"'), r"policies\.normal: bad duration '30 minutes'"),
        (BASE.replace('"30m"', "30"), r"policies\.normal: bad duration 30"),
        (
            BASE.replace('claim_within   = "10m"', 'claim_within = "10m"\nclaim_witin = "5m"'),
            r"policies\.urgent: unknown key\(s\) claim_witin",
        ),
        (
            BASE.replace('escalate_after = "60m"', 'escalate_after = "10m"'),
            r"policies\.normal: escalate_after is before claim_within",
        ),
        ("policies = 3", r"\[policies\.NAME\]"),
        ("", r"\[policies\.NAME\]"),
        ('[policies]\nnormal = "30m"', r"policies\.normal must be a table"),
        (BASE + '[[priorty]]\npolicy = "urgent"\n', r"unknown top-level key\(s\): priorty"),
        ('priority = ["urgent"]\n' + BASE, r"priority rule 1 must be a table"),
        (BASE + '[priority]\npolicy = "urgent"\n', r"priority must be an array of tables"),
        (
            BASE + '[[priority]]\npolicy = "urgent"\nkeywords = "着火"\n',
            r"priority rule 1: keywords",
        ),
        (
            BASE + '[[priority]]\npolicy = "urgent"\nkeyword = ["着火"]\n',
            r"priority rule 1: unknown key\(s\) keyword",
        ),
        (BASE + '[[priority]]\nkeywords = ["着火"]\n', r"priority rule 1: unknown policy None"),
    ],
)
def test_errors_name_what_is_wrong(toml: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(toml)


# ---------------------------------------------------------------- deadlines


def test_deadlines_run_from_the_moment_the_case_opens() -> None:
    opened = datetime(2024, 5, 6, 1, 2, 3, tzinfo=UTC)
    due = deadlines_for(default_policy().policies["normal"], opened_at=opened)
    assert due.claim_due_at == opened + timedelta(minutes=30)
    assert due.escalate_due_at == opened + timedelta(hours=1)
    assert due.resolve_due_at == opened + timedelta(hours=72)


def test_deadlines_follow_the_policy() -> None:
    policy = Policy("p", timedelta(seconds=45), timedelta(minutes=2), timedelta(days=3))
    opened = datetime(2024, 12, 31, 23, 59, tzinfo=UTC)
    due = deadlines_for(policy, opened_at=opened)
    assert due.claim_due_at == datetime(2024, 12, 31, 23, 59, 45, tzinfo=UTC)
    assert due.escalate_due_at == datetime(2025, 1, 1, 0, 1, tzinfo=UTC)
    assert due.resolve_due_at == datetime(2025, 1, 3, 23, 59, tzinfo=UTC)


_OPENED = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("claim", "escalate", "reopen", "claim_due", "escalate_due"),
    [
        # reopen_claim_within unset: half the claim window; the town keeps its 30 min
        (
            timedelta(minutes=30),
            timedelta(hours=1),
            None,
            timedelta(minutes=15),
            timedelta(minutes=45),
        ),
        (
            timedelta(minutes=30),
            timedelta(hours=1),
            timedelta(minutes=10),
            timedelta(minutes=10),
            timedelta(minutes=40),
        ),
        (
            timedelta(hours=2),
            timedelta(hours=3),
            timedelta(hours=2),
            timedelta(hours=2),
            timedelta(hours=3),
        ),
    ],
)
def test_a_reopened_case_must_be_claimed_sooner(
    claim: timedelta,
    escalate: timedelta,
    reopen: timedelta | None,
    claim_due: timedelta,
    escalate_due: timedelta,
) -> None:
    policy = Policy("p", claim, escalate, timedelta(days=3), reopen_claim_within=reopen)
    due = deadlines_for(policy, opened_at=_OPENED, reopened=True)
    assert due.claim_due_at == _OPENED + claim_due
    assert due.escalate_due_at == _OPENED + escalate_due
    assert due.resolve_due_at == _OPENED + timedelta(days=3)  # the resolution clock is not cut
    fresh = deadlines_for(policy, opened_at=_OPENED)
    assert (fresh.claim_due_at, fresh.escalate_due_at) == (_OPENED + claim, _OPENED + escalate)


@pytest.mark.parametrize(
    ("remind_before", "resolve_in", "reminder_in"),
    [
        (None, timedelta(hours=72), None),
        (timedelta(hours=4), timedelta(hours=72), timedelta(hours=68)),
        (timedelta(hours=4), timedelta(hours=4), None),  # would be now: no reminder
        (timedelta(hours=4), timedelta(hours=2), None),  # already past
    ],
)
def test_the_reminder_comes_before_the_resolution_deadline(
    remind_before: timedelta | None, resolve_in: timedelta, reminder_in: timedelta | None
) -> None:
    policy = Policy("p", timedelta(minutes=30), timedelta(hours=1), timedelta(days=3))
    policy = replace(policy, remind_before=remind_before)
    got = reminder_at(policy, resolve_due_at=_OPENED + resolve_in, now=_OPENED)
    assert got == (None if reminder_in is None else _OPENED + reminder_in)


@pytest.mark.parametrize(
    ("to_level", "kind", "after"),
    [
        ("town", "escalate", timedelta(minutes=30)),  # the rest of the claim window
        ("county", "resend", timedelta(minutes=20)),
        ("city", "resend", timedelta(minutes=20)),
    ],
)
def test_what_an_escalation_schedules(to_level: str, kind: str, after: timedelta) -> None:
    policy = Policy(
        "p",
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(days=3),
        resend_every=timedelta(minutes=20),
    )
    assert after_escalation(policy, to_level=to_level, now=_OPENED) == (kind, _OPENED + after)
