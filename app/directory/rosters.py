"""Duty rosters in the database: shifts, one-off overrides, leave, and what
they say (who is on duty, the `值班`/`duty` SMS, the daily roster-gap notice).

The decisions are made by `routing.duty`; this module loads its inputs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import memo
from app.models.directory import Member, MemberLeave, Region, RosterOverride, Shift
from routing.duty import Duty, Leave, Override, describe_gaps, duty_at, gaps
from routing.roster import ShiftSpec
from sms.phones import mask_phone
from sms.templates import word

if TYPE_CHECKING:  # app.cases.changes imports app.directory.lookups, which imports this module
    from app.cases.changes import Ctx


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
    """The unit's active members (memoised within a batch of steps: app/memo.py)."""

    def load() -> list[Member]:
        return list(
            session.scalars(
                select(Member)
                .where(Member.unit_id == unit_id, Member.active.is_(True))
                .order_by(Member.id)
            )
        )

    return list(memo.cached(session, ("members_of", unit_id), load))


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
    """
    held = memo.table_of(session)
    loaded = held.get(("duty_inputs", unit.id)) if held is not None else None
    if loaded is not None:  # by `prefetch_on_duty`
        return _on_duty(*loaded, now=now, tz=tz)
    shifts = shift_specs(session, unit.id)
    overrides = overrides_of(session, unit.id)
    members = members_of(session, unit.id)
    phones = [s.phone for s in shifts] + [o.phone for o in overrides] + [m.phone for m in members]
    return _on_duty(members, shifts, overrides, leaves_of(session, phones), now=now, tz=tz)


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


def prefetch_on_duty(
    session: Session, units: Iterable[Region], *, now: datetime, tz: ZoneInfo
) -> None:
    """What `on_duty` needs to say who is on duty in many units, from three
    queries, into the transaction's memo; it is worked out (and memoised by
    `app.directory.lookups.on_duty`) only for the units asked about."""
    held = memo.table_of(session)
    wanted = {unit.id: unit for unit in units}
    if held is None or not wanted:
        return
    shifts: dict[int, list[ShiftSpec]] = defaultdict(list)
    for s in session.scalars(select(Shift).where(Shift.unit_id.in_(wanted)).order_by(Shift.id)):
        shifts[s.unit_id].append(ShiftSpec(s.phone, s.starts_at, s.ends_at, s.rrule))
    overrides: dict[int, list[Override]] = defaultdict(list)
    for r in session.scalars(
        select(RosterOverride).where(RosterOverride.unit_id.in_(wanted)).order_by(RosterOverride.id)
    ):
        overrides[r.unit_id].append(Override(r.phone, r.starts_at, r.ends_at, r.replaces))
    members = {unit_id: members_of(session, unit_id) for unit_id in wanted}
    phones = {m.phone for group in members.values() for m in group}
    phones |= {x.phone for specs in shifts.values() for x in specs}
    phones |= {x.phone for given in overrides.values() for x in given}
    leaves: dict[str, list[Leave]] = defaultdict(list)
    for leave in leaves_of(session, phones):
        leaves[leave.phone].append(leave)
    for unit_id in wanted:
        own = {m.phone for m in members[unit_id]}
        own |= {x.phone for x in shifts[unit_id]} | {x.phone for x in overrides[unit_id]}
        held[("duty_inputs", unit_id)] = (
            members[unit_id],
            shifts[unit_id],
            overrides[unit_id],
            [leave for phone in own for leave in leaves[phone]],
        )


# ---------------------------------------------------------------- the duty SMS


def answer_duty(ctx: Ctx, sender: str) -> None:
    """`值班` / `duty`: who is on duty now in the sender's grid (or office)."""
    units = [m.unit for m in session_members(ctx.session, sender) if m.unit is not None]
    units.sort(key=lambda u: u.level != "grid")  # a grid first, then offices
    if not units:  # an assigned outside contact: no roster of theirs
        ctx.send(None, sender, "help_worker")
        return
    unit = units[0]
    tz = ctx.rt.settings.tz
    members, from_roster = on_duty(ctx.session, unit, now=ctx.now, tz=tz)
    sep = word("sep", ctx.locale)
    items = sep.join(f"{m.name}{mask_phone(m.phone)}" for m in members[:6])
    template = "duty" if from_roster else "duty_gap"
    ctx.send(None, sender, template, grid=unit.name, items=items)


def session_members(session: Session, phone: str) -> list[Member]:
    return list(
        session.scalars(
            select(Member).where(Member.phone == phone, Member.active.is_(True)).order_by(Member.id)
        )
    )


# ---------------------------------------------------------------- roster gaps


def grid_gaps(
    session: Session, grid: Region, *, day: date, tz: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    shifts = shift_specs(session, grid.id)
    overrides = overrides_of(session, grid.id)
    phones = [s.phone for s in shifts] + [o.phone for o in overrides]
    return gaps(shifts, overrides, leaves_of(session, phones), day=day, tz=tz)


def _town_of(grid: Region) -> Region | None:
    node = grid.parent
    while node is not None and node.level != "town":
        node = node.parent
    return node


def send_roster_gap_notices(ctx: Ctx) -> int:
    """Daily: each town office is texted the gaps of today's rosters of its grids.

    Only grids that keep a roster are checked; a grid without one is served
    by its whole team by design. Returns the SMS written.
    """
    tz = ctx.rt.settings.tz
    day = ctx.now.astimezone(tz).date()
    rostered = select(Shift.unit_id).union(select(RosterOverride.unit_id))
    grids = ctx.session.scalars(
        select(Region).where(Region.level == "grid", Region.id.in_(rostered)).order_by(Region.code)
    )
    towns: dict[int, Region] = {}
    items: dict[int, list[str]] = defaultdict(list)
    for grid in grids:
        found = grid_gaps(ctx.session, grid, day=day, tz=tz)
        town = _town_of(grid)
        if not found or town is None:
            continue
        towns[town.id] = town
        items[town.id].append(f"{grid.code} {describe_gaps(found)}")
    sent = 0
    sep = word("sep", ctx.locale)
    for town_id, town in towns.items():
        members, _ = on_duty(ctx.session, town, now=ctx.now, tz=tz)
        text = sep.join(items[town_id])
        for member in members:
            ctx.send(None, member.phone, "roster_gap", day=day.isoformat(), items=text)
            sent += 1
    return sent
