"""Delivery rules (routing/delivery.py), table-driven, no database: outbox priority,
retry backoff, the sender's rate, quiet hours, the loop guards."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta

import pytest

from routing.delivery import (
    PRIORITY_BULK,
    PRIORITY_NORMAL,
    PRIORITY_URGENT,
    Backoff,
    RateLimit,
    priority_for,
    quiet_release,
    suppression,
)
from routing.policy import QuietHours

T0 = datetime(2026, 12, 7, 12, 0, 0)


@pytest.mark.parametrize(
    ("template", "case_priority", "expected"),
    [
        ("forward", "normal", PRIORITY_NORMAL),
        ("forward", None, PRIORITY_NORMAL),
        ("forward", "urgent", PRIORITY_URGENT),
        ("forward", "emergency", PRIORITY_URGENT),  # any policy but normal
        ("ack", "urgent", PRIORITY_URGENT),
        ("escalated_notice", "normal", PRIORITY_URGENT),
        ("claim_overdue", "normal", PRIORITY_URGENT),
        ("resent_top", None, PRIORITY_URGENT),
        ("undelivered_next", "normal", PRIORITY_URGENT),
        ("help_resident", None, PRIORITY_NORMAL),
        ("overdue_digest", None, PRIORITY_BULK),
        ("roster_gap", "urgent", PRIORITY_BULK),  # bulk whatever the case
    ],
)
def test_priority_of_an_sms(template: str, case_priority: str | None, expected: int) -> None:
    assert priority_for(template, case_priority=case_priority) == expected


def test_priority_bands_are_ordered() -> None:
    assert PRIORITY_URGENT > PRIORITY_NORMAL > PRIORITY_BULK


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [
        (0, 5.0, 10.0),  # before any attempt: the base step
        (1, 5.0, 10.0),
        (2, 10.0, 20.0),
        (3, 20.0, 40.0),
        (6, 160.0, 320.0),
        (7, 300.0, 600.0),  # 640 s capped at 600 s
        (10_000, 300.0, 600.0),  # a huge count does not overflow
    ],
)
def test_backoff_doubles_with_equal_jitter_up_to_the_cap(
    attempts: int, low: float, high: float
) -> None:
    backoff = Backoff(base_seconds=10, cap_seconds=600)
    rng = random.Random(attempts)
    delays = [backoff.delay(attempts, rng=rng).total_seconds() for _ in range(200)]
    assert all(low <= d <= high for d in delays)
    assert min(delays) < low + (high - low) / 4 and max(delays) > high - (high - low) / 4


@pytest.mark.parametrize(
    "kwargs", [{"base_seconds": -1}, {"base_seconds": 10, "cap_seconds": 5}, {"max_attempts": 0}]
)
def test_backoff_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("per_second", "interval_us", "burst"),
    [(5, 200_000, 5), (4, 250_000, 4), (0.5, 2_000_000, 1), (2.5, 400_000, 3), (1000, 1000, 1000)],
)
def test_rate_interval_and_burst(per_second: float, interval_us: int, burst: int) -> None:
    rate = RateLimit(sender="+8657012345", per_second=per_second)
    assert rate.interval == timedelta(microseconds=interval_us)
    assert rate.burst == burst


@pytest.mark.parametrize(
    ("tat_offset_ms", "allowance", "until_offset_ms"),
    [
        (-5_000, 5, None),  # idle for a while: a whole burst may leave
        (0, 5, None),
        (200, 4, None),  # one interval ahead: one fewer
        (800, 1, None),  # burst - 1 intervals ahead: the last one of the burst
        (801, 0, 1),  # a microsecond-ish past the slack: wait until it is back
        (1_000, 0, 200),
        (3_000, 0, 2_200),
    ],
)
def test_gcra_allowance_and_wait(
    tat_offset_ms: int, allowance: int, until_offset_ms: int | None
) -> None:
    rate = RateLimit(sender="+8657012345", per_second=5)  # burst 5, one every 200 ms
    tat = T0 + timedelta(milliseconds=tat_offset_ms)
    assert rate.allowance(tat, T0) == allowance
    until = rate.throttled_until(tat, T0)
    if until_offset_ms is None:
        assert until is None
    else:
        assert until == T0 + timedelta(milliseconds=until_offset_ms)


def test_gcra_holds_the_rate_over_a_long_run() -> None:
    rate = RateLimit(sender="+8657012345", per_second=5)
    tat, now, sent = T0, T0, 0
    while now < T0 + timedelta(seconds=60):
        n = rate.allowance(tat, now)
        tat = rate.after(tat, now, n)
        sent += n
        now += timedelta(milliseconds=50)
    # The burst at 0 s, then one each 200 ms from 0.2 s to 59.8 s: 5 + 299.
    assert sent == 5 + 299


QUIET = QuietHours(start=time(22, 0), end=time(7, 0), roles=("volunteer",))


@pytest.mark.parametrize(
    ("template", "case_priority", "roles", "local", "release"),
    [
        (
            "forward",
            "normal",
            ["volunteer"],
            datetime(2026, 12, 7, 23, 30),
            datetime(2026, 12, 8, 7),
        ),
        ("forward", None, ["volunteer"], datetime(2026, 12, 8, 2, 0), datetime(2026, 12, 8, 7)),
        ("forward", "normal", ["volunteer"], datetime(2026, 12, 8, 7, 0), None),  # hours over
        ("forward", "normal", ["volunteer"], datetime(2026, 12, 7, 21, 59), None),
        ("forward", "urgent", ["volunteer"], datetime(2026, 12, 7, 23, 30), None),
        ("forward", "normal", ["volunteer", "cadre"], datetime(2026, 12, 7, 23, 30), None),
        ("forward", "normal", [], datetime(2026, 12, 7, 23, 30), None),  # not a member
        ("forward", "normal", ["cadre"], datetime(2026, 12, 7, 23, 30), None),
        ("ack", None, ["volunteer"], datetime(2026, 12, 7, 23, 30), None),  # an answer
        (
            "roster_gap",
            None,
            ["volunteer"],
            datetime(2026, 12, 7, 23, 30),
            datetime(2026, 12, 8, 7),
        ),
    ],
)
def test_quiet_hours(
    template: str,
    case_priority: str | None,
    roles: list[str],
    local: datetime,
    release: datetime | None,
) -> None:
    got = quiet_release(
        QUIET, template=template, case_priority=case_priority, roles=roles, local_now=local
    )
    assert got == release


def test_no_quiet_hours_configured_holds_nothing() -> None:
    assert (
        quiet_release(
            None,
            template="forward",
            case_priority="normal",
            roles=["volunteer"],
            local_now=datetime(2026, 12, 7, 23, 30),
        )
        is None
    )


@pytest.mark.parametrize(
    ("template", "to_sender", "repeat", "replies", "cap", "reason"),
    [
        ("ack", True, False, 0, 10, None),
        ("ack", True, True, None, 10, "repeat"),  # the same text again: no count needed
        ("ack", True, False, 10, 10, "cap"),
        ("ack", True, False, 9, 10, None),
        ("ack", True, False, 50, 0, None),  # cap 0: no cap
        ("ack", False, True, 50, 10, None),  # not an answer to the sender
        ("slow_down", True, True, 0, 10, None),  # answers a flood, repeated or not
        ("slow_down", True, True, 10, 10, "cap"),
        ("forward_append", False, True, None, 10, "repeat"),  # echo of a repeat: no
        ("forward_append", False, False, None, 10, None),
        ("relay_resident", False, True, None, 10, "repeat"),
        ("relay_resident", True, True, None, 10, None),  # back to the sender: no echo
        ("forward", False, True, None, 10, None),  # a first forward is never held
        ("claim_overdue", False, True, None, 10, None),
    ],
)
def test_loop_guards(
    template: str,
    to_sender: bool,
    repeat: bool,
    replies: int | None,
    cap: int,
    reason: str | None,
) -> None:
    def count() -> int:
        # None in the table: the rule must not need the count (a query) here.
        assert replies is not None, "the count was asked for"
        return replies

    got = suppression(
        template,
        to_sender=to_sender,
        repeat=lambda: repeat,
        replies_this_hour=count,
        cap_per_hour=cap,
    )
    assert got == reason


def test_the_repeat_query_is_not_asked_for_a_slow_down() -> None:
    def repeat() -> bool:
        raise AssertionError("slow_down does not care whether the text repeats")

    got = suppression(
        "slow_down", to_sender=True, repeat=repeat, replies_this_hour=lambda: 0, cap_per_hour=10
    )
    assert got is None
