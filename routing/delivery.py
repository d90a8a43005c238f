"""Delivery rules: an SMS's outbox priority, the retry backoff, the sender's rate,
quiet hours, and the loop guards on automatic replies.

Plain data and an explicit `now` in, a decision out; `app/delivery` reads the
rows these rules need and writes what they decide.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from routing.policy import QuietHours

# --- outbox priority ----------------------------------------------------------

# Priority bands: the worker leases by (priority, due time), highest first, so
# an urgent forward overtakes a broadcast backlog. Any int works; these are ours.
PRIORITY_URGENT = 10  # forwards of urgent cases, escalation notices
PRIORITY_NORMAL = 0  # ordinary case traffic and replies
PRIORITY_BULK = -10  # broadcasts, digests, roster reports

BULK_TEMPLATES = frozenset({"overdue_digest", "roster_gap"})
# A deadline was missed: these go before ordinary traffic whatever the case's policy.
ESCALATION_TEMPLATES = frozenset(
    {"escalated_notice", "claim_overdue", "resent_top", "undelivered_next"}
)


def priority_for(template: str, *, case_priority: str | None) -> int:
    """The outbox priority of an SMS: its template, and the policy of its case."""
    if template in BULK_TEMPLATES:
        return PRIORITY_BULK
    if template in ESCALATION_TEMPLATES or case_priority not in (None, "normal"):
        return PRIORITY_URGENT
    return PRIORITY_NORMAL


# --- retries ------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    base_seconds: float = 5.0
    cap_seconds: float = 3600.0
    max_attempts: int = 8

    def __post_init__(self) -> None:
        if self.base_seconds < 0 or self.cap_seconds < self.base_seconds:
            raise ValueError("backoff needs 0 <= base_seconds <= cap_seconds")
        if self.max_attempts < 1:
            raise ValueError("backoff needs max_attempts >= 1")

    def delay(self, attempts: int, *, rng: random.Random | None = None) -> timedelta:
        """Exponential backoff with "equal jitter": between half the step and the step.

        The step doubles from `base_seconds` after each attempt, capped at
        `cap_seconds`; the random half spreads retries of rows that failed
        together (a gateway outage) so they do not return as one burst.
        """
        # The exponent is clamped: a row that keeps losing its lease can reach
        # attempt counts where 2**n no longer fits a float.
        exponent = min(max(0, attempts - 1), 60)
        step = min(self.cap_seconds, self.base_seconds * 2.0**exponent)
        jitter = (rng or random).uniform(0.5, 1.0)
        return timedelta(seconds=step * jitter)


# --- the sender's rate (GCRA) -------------------------------------------------


@dataclass(frozen=True)
class RateLimit:
    """At most `per_second` SMS from `sender`, across all workers (0: unlimited).

    A generic cell rate algorithm on one stored time per sender, its
    theoretical arrival time `tat`: each SMS moves it an `interval` on, and one
    may leave while `tat` is at most `burst - 1` intervals ahead of now."""

    sender: str
    per_second: float

    @property
    def interval(self) -> timedelta:
        # Whole microseconds, so that five steps of 1/5 s make exactly one second.
        return timedelta(microseconds=max(1, round(1_000_000 / self.per_second)))

    @property
    def burst(self) -> int:
        """How many may leave back to back: one second's worth, at least one."""
        return max(1, math.ceil(self.per_second))

    def allowance(self, tat: datetime, now: datetime) -> int:
        """How many SMS may leave back to back at `now`."""
        slack = self.interval * (self.burst - 1)
        ahead = max(tat, now) - now
        if ahead > slack:
            return 0
        return (slack - ahead) // self.interval + 1

    def throttled_until(self, tat: datetime, now: datetime) -> datetime | None:
        """None when one more SMS may leave at `now`; else when it may."""
        slack = self.interval * (self.burst - 1)
        if max(tat, now) - now <= slack:
            return None
        return tat - slack

    def after(self, tat: datetime, now: datetime, sent: int) -> datetime:
        """The sender's `tat` once `sent` SMS have left at `now`."""
        return max(tat, now) + self.interval * sent


# --- quiet hours --------------------------------------------------------------

# Notices the platform sends on its own about a case or an area; replies to a
# member's own command are not among them.
NOTICES = frozenset(
    {
        "forward",
        "forward_append",
        "claim_overdue",
        "escalated_notice",
        "reopened_team",
        "resent_top",
        "undelivered_next",
        "claimed_notice",
        "resolve_reminder",
        "overdue_digest",
        "roster_gap",
    }
)


def may_hold(quiet: QuietHours | None, *, template: str, case_priority: str | None) -> bool:
    """Whether quiet hours could hold this SMS back at all (before looking up
    who it goes to): a notice, not about an urgent case, with quiet hours set."""
    if quiet is None or template not in NOTICES:
        return False
    return case_priority in (None, "normal")


def quiet_release(
    quiet: QuietHours | None,
    *,
    template: str,
    case_priority: str | None,
    roles: Collection[str],
    local_now: datetime,
) -> datetime | None:
    """When (local, naive) an SMS may go, if quiet hours hold it back; None: at once.

    Held: a notice (never an answer to the member's own text), about no case
    or a `normal` one, to someone who is nothing but the quiet roles (a cadre
    who also volunteers is on duty), inside the quiet hours."""
    if not may_hold(quiet, template=template, case_priority=case_priority):
        return None
    assert quiet is not None
    if not roles or not all(role in quiet.roles for role in roles):
        return None
    return quiet.holds(local_now)


# --- loop guards --------------------------------------------------------------

# Texts the platform sends on its own in answer to a message from that number.
AUTO_REPLIES = frozenset(
    {
        "ack",
        "ack_append",
        "ask_address",
        "ask_address_again",
        "ask_choice",
        "ask_part",
        "help_resident",
        "status_resident",
        "status_none",
        "help_worker",
        "opted_out",
        "opted_in",
        "rated_thanks",
        "unknown_code",
        "not_on_case",
        "not_allowed",
        "no_open_case",
        "several_cases",
        "which_case",
        "claim_first",
        "member_opt_out",
        "member_opt_out_alone",
        "transfer_out_of_area",
        "need_text",
        "unknown_grid",
        "already_claimed",
        "already_yours",
        "list",
        "duty",
        "duty_gap",
        "slow_down",
    }
)
# Texts that carry the sender's own words on to somebody else.
ECHOES = frozenset({"forward_append", "relay_resident", "member_opt_out_office"})


def guarded(template: str, *, to_sender: bool) -> bool:
    """Whether the loop guards look at this SMS at all: an echo of the sender's
    words to somebody else, or an automatic reply to the sender."""
    if template in ECHOES:
        return not to_sender
    return template in AUTO_REPLIES and to_sender


def suppression(
    template: str,
    *,
    to_sender: bool,
    repeat: Callable[[], bool],
    replies_this_hour: Callable[[], int],
    cap_per_hour: int,
) -> str | None:
    """Why an SMS caused by an inbound text must not go (a loop it would feed),
    or None. `repeat()`: the same text came from the same number a moment ago;
    `replies_this_hour()`: automatic replies to that number in the last hour.
    Each is asked only when the rule needs it (they are queries)."""
    if not guarded(template, to_sender=to_sender):
        return None
    if template in ECHOES:
        return "repeat" if repeat() else None
    # "Slow down" answers a flood, which may well be one text repeated.
    if template != "slow_down" and repeat():
        return "repeat"
    if cap_per_hour and replies_this_hour() >= cap_per_hour:
        return "cap"
    return None
