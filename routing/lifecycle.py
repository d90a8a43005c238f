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


# The deadline step table: what a due step does to a case in a status at a
# level (app/deadlines/steps.py and ladder.py carry it out). A step that finds
# its case elsewhere is skipped: somebody has acted on it since.
_STEPS: tuple[tuple[str, frozenset[str], frozenset[str], str], ...] = (
    # kind, statuses, levels, action
    ("claim_overdue", frozenset({"open"}), frozenset({"grid"}), "notify_team_and_town"),
    ("escalate", frozenset({"open"}), frozenset({"grid", "town"}), "escalate_to_county"),
    (
        "resolve_overdue",
        frozenset({"open", "claimed"}),
        frozenset({"grid", "town"}),
        "escalate_to_county",
    ),
    (
        "resolve_overdue",
        frozenset({"open", "claimed"}),
        frozenset({"county", "city"}),
        "mark_overdue",
    ),
    ("rating_close", frozenset({"resolved"}), frozenset(LEVELS), "close"),
    ("resend", frozenset({"open"}), frozenset({"county", "city"}), "resend"),
    ("forward_rest", frozenset({"open"}), frozenset({"grid"}), "forward_rest"),
    ("resolve_reminder", frozenset({"claimed"}), frozenset(LEVELS), "remind"),
    ("undelivered", frozenset({"open"}), frozenset(LEVELS), "next_rung"),
    # A reply to the resident that did not arrive: its writer is told, whatever
    # the case has become since (a resolution note fails once it is resolved).
    ("reply_undelivered", frozenset(STATUSES), frozenset(LEVELS), "tell_writer"),
)
STEP_KINDS = frozenset(kind for kind, *_ in _STEPS)


def step_action(kind: str, status: str, level: str) -> str | None:
    """What a due step of `kind` does to a case in `status` at `level`; None: skip it."""
    for step, statuses, levels, action in _STEPS:
        if step == kind and status in statuses and level in levels:
            return action
    if kind not in STEP_KINDS:
        raise ValueError(f"not a deadline step: {kind}")
    return None


def escalates_when_not_satisfied(*, times_reopened: int, level: str) -> bool:
    """A resident's `2` reopens the case; the second time it also escalates it
    (unless it is at the top already)."""
    return times_reopened > 0 and next_level(level) is not None
