"""The case lifecycle table (routing/lifecycle.py), row by row: no database."""

from __future__ import annotations

import pytest

from routing.lifecycle import (
    ALLOWED,
    LEVELS,
    STATUSES,
    allows,
    escalation_target,
    is_above,
    next_level,
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
