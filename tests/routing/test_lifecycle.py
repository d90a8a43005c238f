"""The case lifecycle table (routing/lifecycle.py), row by row: no database."""

from __future__ import annotations

import pytest

from routing.lifecycle import (
    ALLOWED,
    LEVELS,
    STATUSES,
    STEP_KINDS,
    allows,
    escalates_when_not_satisfied,
    escalation_target,
    is_above,
    next_level,
    step_action,
)

# Every (action, status) pair: what the SMS grammar, the API and the console may do.
EXPECTED = {
    "claim": {"open"},
    "relay": {"open", "claimed", "resolved"},
    "resolve": {"open", "claimed"},
    "escalate": {"open", "claimed"},
    "transfer": {"open", "claimed"},
    "assign": {"open", "claimed"},
    "send_back": {"open", "claimed"},
    "close": {"resolved"},
    "reopen": {"resolved"},
    "office_reopen": {"resolved", "closed"},
    "message": {"awaiting_address", "open", "claimed", "resolved"},
    "comment": set(STATUSES),
}


@pytest.mark.parametrize("action", sorted(EXPECTED))
@pytest.mark.parametrize("status", STATUSES)
def test_each_action_is_allowed_from_exactly_its_statuses(action: str, status: str) -> None:
    assert allows(action, status) is (status in EXPECTED[action])


def test_the_table_names_every_action_and_nothing_else() -> None:
    assert set(ALLOWED) == set(EXPECTED)
    assert not allows("teleport", "open")
    assert not allows("claim", "no such status")


@pytest.mark.parametrize(
    ("level", "above"),
    [("grid", "town"), ("town", "county"), ("county", "city"), ("city", None)],
)
def test_the_ladder(level: str, above: str | None) -> None:
    assert next_level(level) == above


@pytest.mark.parametrize(
    ("level", "to_level", "target"),
    [
        ("grid", None, "town"),
        ("town", None, "county"),
        ("county", None, "city"),
        ("city", None, None),  # nowhere higher
        ("grid", "county", "county"),  # an office sends it straight to the county
        ("grid", "city", "city"),
        ("county", "town", None),  # never down the ladder
        ("town", "town", None),  # nor sideways
    ],
)
def test_escalation_target(level: str, to_level: str | None, target: str | None) -> None:
    assert escalation_target(level, to_level) == target


def test_is_above_orders_the_levels() -> None:
    pairs = [(a, b) for a in LEVELS for b in LEVELS if is_above(a, b)]
    assert pairs == [
        ("town", "grid"),
        ("county", "grid"),
        ("county", "town"),
        ("city", "grid"),
        ("city", "town"),
        ("city", "county"),
    ]


# The deadline step table: (kind, status, level) → what the step does; None: skipped.
STEP_CASES = [
    ("claim_overdue", "open", "grid", "notify_team_and_town"),
    ("claim_overdue", "open", "town", None),  # escalated by hand already
    ("claim_overdue", "claimed", "grid", None),
    ("escalate", "open", "grid", "escalate_to_county"),
    ("escalate", "open", "town", "escalate_to_county"),
    ("escalate", "open", "county", None),
    ("escalate", "claimed", "grid", None),
    ("resolve_overdue", "open", "grid", "escalate_to_county"),
    ("resolve_overdue", "claimed", "town", "escalate_to_county"),
    ("resolve_overdue", "claimed", "county", "mark_overdue"),
    ("resolve_overdue", "open", "city", "mark_overdue"),
    ("resolve_overdue", "resolved", "grid", None),
    ("rating_close", "resolved", "grid", "close"),
    ("rating_close", "resolved", "county", "close"),
    ("rating_close", "open", "grid", None),  # reopened by a 2 meanwhile
    ("resend", "open", "county", "resend"),
    ("resend", "open", "city", "resend"),
    ("resend", "open", "town", None),
    ("resend", "claimed", "county", None),
    ("forward_rest", "open", "grid", "forward_rest"),
    ("forward_rest", "claimed", "grid", None),
    ("forward_rest", "open", "town", None),
    ("resolve_reminder", "claimed", "grid", "remind"),
    ("resolve_reminder", "open", "grid", None),
    ("undelivered", "open", "town", "next_rung"),
    ("undelivered", "claimed", "grid", None),  # somebody has the case
    ("reply_undelivered", "claimed", "grid", "tell_writer"),
    ("reply_undelivered", "resolved", "town", "tell_writer"),
    ("reply_undelivered", "closed", "county", "tell_writer"),  # the writer still learns
]


@pytest.mark.parametrize(("kind", "status", "level", "action"), STEP_CASES)
def test_deadline_step_table(kind: str, status: str, level: str, action: str | None) -> None:
    assert step_action(kind, status, level) == action


def test_every_step_kind_is_in_the_table_and_no_other() -> None:
    assert {kind for kind, *_ in STEP_CASES} == STEP_KINDS
    with pytest.raises(ValueError, match="not a deadline step"):
        step_action("digest", "open", "grid")


@pytest.mark.parametrize(
    ("times_reopened", "level", "escalates"),
    [
        (0, "grid", False),
        (1, "grid", True),
        (3, "town", True),
        (1, "city", False),
        (0, "city", False),
    ],
)
def test_a_second_not_satisfied_escalates(times_reopened: int, level: str, escalates: bool) -> None:
    assert escalates_when_not_satisfied(times_reopened=times_reopened, level=level) is escalates
