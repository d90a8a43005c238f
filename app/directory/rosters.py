"""Duty rosters in the database: shifts, one-off overrides, leave, and what
they say: who is on duty, a grid's gaps of a day.

The decisions are made by `routing.duty`; this module loads its inputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.directory import Member, MemberLeave, Region, RosterOverride, Shift
from routing.duty import Duty, Leave, Override, duty_at, gaps
from routing.roster import ShiftSpec


def shift_specs(session: Session, unit_id: int) -> list[ShiftSpec]:
    rows = session.scalars(select(Shift).where(Shift.unit_id == unit_id).order_by(Shift.id))
    return [ShiftSpec(s.phone, s.starts_at, s.ends_at, s.rrule) for s in rows]


def overrides_of(session: Session, unit_id: int) -> list[Override]:
    rows = session.scalars(
        select(RosterOverride).where(RosterOverride.unit_id == unit_id).order_by(RosterOverride.id)
    )
    return [Override(r.phone, r.starts_at, r.ends_at, r.replaces) for r in rows]


def leaves_of(session: Session, phones: Iterable[str]) -> list[Leave]:
    wanted = list(set(phones))
    if not wanted:
        return []
    rows = session.scalars(select(MemberLeave).where(MemberLeave.phone.in_(wanted)))
    return [Leave(r.phone, r.starts_at, r.ends_at) for r in rows]


def members_of(session: Session, unit_id: int) -> list[Member]:
    """The unit's active members."""
    return list(
        session.scalars(
            select(Member)
            .where(Member.unit_id == unit_id, Member.active.is_(True))
            .order_by(Member.id)
        )
    )


def duty(session: Session, unit: Region, *, now: datetime, tz: ZoneInfo) -> Duty:
    shifts = shift_specs(session, unit.id)
    overrides = overrides_of(session, unit.id)
    phones = [s.phone for s in shifts] + [o.phone for o in overrides]
    phones += [m.phone for m in members_of(session, unit.id)]
    return duty_at(shifts, overrides, leaves_of(session, phones), now=now, tz=tz)


def on_duty(
    session: Session, unit: Region, *, now: datetime, tz: ZoneInfo
) -> tuple[list[Member], bool]:
    """The unit's members on duty at `now`; when nobody is (a roster gap), all
    its members who are not on leave (all of them if everyone is).

    Returns the members and whether they came from the roster (False: fallback).
    Rosters are not written by the transactions that ask (a case's): what
    they have pending is not flushed for these reads.
    """
    with session.no_autoflush:
        shifts = shift_specs(session, unit.id)
        overrides = overrides_of(session, unit.id)
        members = members_of(session, unit.id)
        phones = [s.phone for s in shifts] + [o.phone for o in overrides]
        phones += [m.phone for m in members]
        leaves = leaves_of(session, phones)
    return _on_duty(members, shifts, overrides, leaves, now=now, tz=tz)


def _on_duty(
    members: list[Member],
    shifts: list[ShiftSpec],
    overrides: list[Override],
    leaves: list[Leave],
    *,
    now: datetime,
    tz: ZoneInfo,
) -> tuple[list[Member], bool]:
    answer = duty_at(shifts, overrides, leaves, now=now, tz=tz)
    by_phone = {m.phone: m for m in members}
    on = [by_phone[p] for p in answer.phones if p in by_phone]
    if on:
        return on, True
    local = now.astimezone(tz).replace(tzinfo=None)
    away = {p for p, why in answer.why.items() if why == "on leave"}
    away |= {
        leave.phone
        for leave in leaves
        if leave.phone in by_phone and leave.starts_at <= local < leave.ends_at
    }
    present = [m for m in members if m.phone not in away]
    return (present or members), False


# ---------------------------------------------------------------- roster gaps


def grid_gaps(
    session: Session, grid: Region, *, day: date, tz: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    shifts = shift_specs(session, grid.id)
    overrides = overrides_of(session, grid.id)
    phones = [s.phone for s in shifts] + [o.phone for o in overrides]
    return gaps(shifts, overrides, leaves_of(session, phones), day=day, tz=tz)
