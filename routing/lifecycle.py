"""The case lifecycle as data: which action a case's status allows, and the
ladder of levels (DESIGN.md, "Cases"). No I/O; `app.cases` asks here before
it changes anything.
"""

from __future__ import annotations

STATUSES = ("awaiting_address", "open", "claimed", "resolved", "closed")
LEVELS = ("grid", "town", "county", "city")

# Action → the statuses it may start from.
ALLOWED: dict[str, frozenset[str]] = {
    "claim": frozenset({"open"}),
    "relay": frozenset({"open", "claimed", "resolved"}),
    "resolve": frozenset({"open", "claimed"}),
    "escalate": frozenset({"open", "claimed"}),
    "transfer": frozenset({"open", "claimed"}),
    "assign": frozenset({"open", "claimed"}),
    "send_back": frozenset({"open", "claimed"}),
    "close": frozenset({"resolved"}),
    "reopen": frozenset({"resolved"}),  # the resident's "not satisfied"
    "office_reopen": frozenset({"resolved", "closed"}),  # an office judged it not done
    "message": frozenset({"awaiting_address", "open", "claimed", "resolved"}),
    "comment": frozenset(STATUSES),
}


def allows(action: str, status: str) -> bool:
    """Whether a case in `status` may take `action` (an unknown action: never)."""
    return status in ALLOWED.get(action, frozenset())


def next_level(level: str) -> str | None:
    """The level above `level`, or None at the top (`city`)."""
    index = LEVELS.index(level)
    return LEVELS[index + 1] if index + 1 < len(LEVELS) else None


def is_above(level: str, other: str) -> bool:
    """Whether `level` stands higher on the ladder than `other`."""
    return LEVELS.index(level) > LEVELS.index(other)


def escalation_target(level: str, to_level: str | None = None) -> str | None:
    """Where an escalation from `level` goes: `to_level` when it is higher,
    else the next level; None when there is nowhere higher to go."""
    target = to_level or next_level(level)
    if target is None or not is_above(target, level):
        return None
    return target
