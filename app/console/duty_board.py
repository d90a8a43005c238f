"""The numbers behind `/console/duty`: who is on duty per grid now and next,
the roster gaps of the coming days, and the phones our SMS did not reach.

The decisions are `routing.duty`'s, as for the SMS (`app.directory.rosters`); here the
inputs of a whole town or county are loaded in a few queries instead of a few
per grid. Phones leave this module masked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from typing import Any, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.console.areas import Tree, Unit
from app.models.directory import Member, MemberLeave, RosterOverride, Shift
from app.models.messages import OutboundMessage
from routing.duty import Leave, Override, duty_at, gaps_between, next_change
from routing.roster import ShiftSpec, rebased
from sms.phones import mask_phone, mask_phones_in_text

CHUNK = 900  # bound parameters per IN list (SQLite allows 32,766; keep plans small)
NOT_DELIVERED = ("undelivered", "failed")

T = TypeVar("T")


def _chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


@dataclass(frozen=True)
class Person:
    name: str
    phone: str  # masked
    role: str


@dataclass
class UnitDuty:
    unit: Unit
    town: Unit | None
    team: int  # active members
    rostered: bool  # keeps a roster (shifts or overrides)
    now: list[Person]
    fallback: bool  # nobody on shift now: the whole team (not on leave) gets cases
    next_at: datetime | None = None  # local wall clock
    next: list[Person] = field(default_factory=list)
    gaps: list[tuple[datetime, datetime]] = field(default_factory=list)  # local


@dataclass
class Inputs:
    members: dict[int, list[Member]]
    shifts: dict[int, list[ShiftSpec]]
    overrides: dict[int, list[Override]]
    leaves: dict[str, list[Leave]]


def load_inputs(session: Session, unit_ids: Sequence[int]) -> Inputs:
    members: dict[int, list[Member]] = defaultdict(list)
    shifts: dict[int, list[ShiftSpec]] = defaultdict(list)
    overrides: dict[int, list[Override]] = defaultdict(list)
    for ids in _chunks(unit_ids):
        for m in session.scalars(
            select(Member)
            .where(Member.unit_id.in_(ids), Member.active.is_(True))
            .order_by(Member.id)
        ):
            members[m.unit_id].append(m)
        for s in session.scalars(select(Shift).where(Shift.unit_id.in_(ids)).order_by(Shift.id)):
            shifts[s.unit_id].append(ShiftSpec(s.phone, s.starts_at, s.ends_at, s.rrule))
        for o in session.scalars(
            select(RosterOverride)
            .where(RosterOverride.unit_id.in_(ids))
            .order_by(RosterOverride.id)
        ):
            overrides[o.unit_id].append(Override(o.phone, o.starts_at, o.ends_at, o.replaces))
    phones = sorted(
        {m.phone for ms in members.values() for m in ms}
        | {s.phone for ss in shifts.values() for s in ss}
        | {o.phone for os_ in overrides.values() for o in os_}
    )
    leaves: dict[str, list[Leave]] = defaultdict(list)
    for chunk in _chunks(phones):
        for leave in session.scalars(select(MemberLeave).where(MemberLeave.phone.in_(chunk))):
            leaves[leave.phone].append(Leave(leave.phone, leave.starts_at, leave.ends_at))
    return Inputs(members=members, shifts=shifts, overrides=overrides, leaves=leaves)


def _people(phones: Iterable[str], members: list[Member]) -> list[Person]:
    by_phone = {m.phone: m for m in members}
    out = []
    for phone in phones:
        m = by_phone.get(phone)
        out.append(Person(m.name if m else "", mask_phone(phone), m.role if m else ""))
    return out


def unit_duty(
    unit: Unit, town: Unit | None, inputs: Inputs, *, now: datetime, tz: tzinfo, days: int
) -> UnitDuty:
    members = inputs.members.get(unit.id, [])
    shifts = inputs.shifts.get(unit.id, [])
    overrides = inputs.overrides.get(unit.id, [])
    phones = {m.phone for m in members} | {s.phone for s in shifts} | {o.phone for o in overrides}
    leaves = [leave for p in sorted(phones) for leave in inputs.leaves.get(p, [])]
    answer = duty_at(shifts, overrides, leaves, now=now, tz=tz)
    local = now.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
    entry = UnitDuty(
        unit=unit,
        town=town,
        team=len(members),
        rostered=bool(shifts or overrides),
        now=_people(answer.phones, members),
        fallback=answer.gap,
    )
    if answer.gap:
        # As app.directory.rosters.on_duty: everyone not on leave (everyone if all are).
        away = {leave.phone for leave in leaves if leave.starts_at <= local < leave.ends_at}
        present = [m for m in members if m.phone not in away] or members
        entry.now = _people((m.phone for m in present), members)
    if entry.rostered:
        change = next_change(shifts, overrides, leaves, now=now, tz=tz)
        if change is not None:
            entry.next_at = change[0]
            entry.next = _people(change[1].phones, members)
        entry.gaps = gaps_between(
            shifts, overrides, leaves, start=local, end=local + timedelta(days=days), tz=tz
        )
    return entry


def duty_board(
    session: Session,
    tree: Tree,
    unit: Unit,
    *,
    now: datetime,
    tz: tzinfo,
    days: int = 7,
    with_grids: bool = True,
) -> tuple[list[UnitDuty], list[UnitDuty]]:
    """(the offices' duty: the unit and its towns; the grids' duty), by code."""
    offices = [unit] if unit.level != "city" else tree.below(unit, "county")
    if unit.level != "town":
        offices += tree.below(unit, "town")
    grids = tree.below(unit, "grid") if with_grids else []
    inputs = load_inputs(session, [u.id for u in offices + grids])
    # Recurring shifts anchored at their last occurrence a day before the
    # earliest moment asked about: the same answers, without walking every
    # rule from its first occurrence for each of a town's grids.
    local = now.astimezone(tz).replace(tzinfo=None)
    for specs in inputs.shifts.values():
        for i, spec in enumerate(specs):
            reach = spec.ends_at - spec.starts_at + timedelta(days=1)
            since = datetime.combine((local - reach).date(), time())
            specs[i] = rebased(spec, since=since, tz=tz)

    def town_of(u: Unit) -> Unit | None:
        return tree.ancestor(u, "town")

    return (
        [unit_duty(u, town_of(u), inputs, now=now, tz=tz, days=days) for u in offices],
        [unit_duty(g, town_of(g), inputs, now=now, tz=tz, days=days) for g in grids],
    )


# ---------------------------------------------------------------- undelivered SMS


@dataclass
class Undelivered:
    phone: str  # masked
    holders: list[tuple[str, Unit]]  # (member name, unit)
    count: int
    last_at: datetime
    last_status: str
    last_error: str


def undelivered_phones(
    session: Session, units: Sequence[Unit], *, since: datetime
) -> list[Undelivered]:
    """The phones of the units' members with SMS since `since` that did not
    arrive (given up by us, or reported undelivered/failed by the gateway);
    most failures first."""
    by_id = {u.id: u for u in units}
    holders: dict[str, list[tuple[str, Unit]]] = defaultdict(list)
    for ids in _chunks(list(by_id)):
        for m in session.scalars(
            select(Member)
            .where(Member.unit_id.in_(ids), Member.active.is_(True))
            .order_by(Member.id)
        ):
            holders[m.phone].append((m.name, by_id[m.unit_id]))
    found: dict[str, Any] = {}
    for phones in _chunks(sorted(holders)):
        rows = session.execute(
            select(
                OutboundMessage.to_phone,
                OutboundMessage.created_at,
                OutboundMessage.status,
                OutboundMessage.delivery_status,
                OutboundMessage.error_code,
                OutboundMessage.error_message,
            )
            .where(
                OutboundMessage.to_phone.in_(phones),
                OutboundMessage.created_at >= since,
                or_(
                    OutboundMessage.status == "failed",
                    OutboundMessage.delivery_status.in_(NOT_DELIVERED),
                ),
            )
            .order_by(OutboundMessage.created_at, OutboundMessage.id)
        )
        for phone, at, status, delivery, code, message in rows:
            entry = found.get(phone)
            if entry is None:
                entry = found[phone] = Undelivered(
                    phone=mask_phone(phone),
                    holders=holders[phone],
                    count=0,
                    last_at=at,
                    last_status="",
                    last_error="",
                )
            entry.count += 1
            entry.last_at = at
            entry.last_status = delivery if delivery in NOT_DELIVERED else status
            entry.last_error = mask_phones_in_text(" ".join(x for x in (code, message) if x))
    return sorted(found.values(), key=lambda u: (-u.count, u.phone))
