"""Read-side queries over regions, members and rosters."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from app import memo
from app.directory import rosters
from app.models.directory import Member, Region


def region_by_code(session: Session, code: str) -> Region | None:
    return session.scalar(select(Region).where(Region.code == code))


def ancestors(region: Region | None) -> list[Region]:
    """The region itself and its ancestors, nearest first."""
    chain: list[Region] = []
    node = region
    while node is not None and len(chain) < 8:
        chain.append(node)
        node = node.parent
    return chain


def ancestor_at(region: Region | None, level: str) -> Region | None:
    for node in ancestors(region):
        if node.level == level:
            return node
    return None


def members_of(session: Session, unit_id: int) -> list[Member]:
    return rosters.members_of(session, unit_id)


def prefetch_members(session: Session, unit_ids: set[int]) -> None:
    """Load the members of many units at once into the transaction's memo."""
    held = memo.table_of(session)
    if held is None or not unit_ids:
        return
    found: dict[int, list[Member]] = {unit_id: [] for unit_id in unit_ids}
    rows = session.scalars(
        select(Member)
        .where(Member.unit_id.in_(unit_ids), Member.active.is_(True))
        .order_by(Member.id)
        .options(lazyload(Member.unit))  # the units are the batch's, loaded already
    )
    for member in rows:
        found[member.unit_id].append(member)
    for unit_id, members in found.items():
        held[("members_of", unit_id)] = members


def members_by_phone(session: Session, phone: str) -> list[Member]:
    return list(
        memo.cached(
            session,
            ("members_by_phone", phone),
            lambda: list(
                session.scalars(
                    select(Member).where(Member.phone == phone, Member.active.is_(True))
                )
            ),
        )
    )


def prefetch_members_by_phone(session: Session, phones: set[str]) -> None:
    """`members_by_phone` of many phones from one query, into the transaction's memo."""
    held = memo.table_of(session)
    if held is None or not phones:
        return
    found: dict[str, list[Member]] = {phone: [] for phone in phones}
    rows = session.scalars(
        select(Member).where(Member.phone.in_(phones), Member.active.is_(True)).order_by(Member.id)
    )
    for member in rows:
        found[member.phone].append(member)
    for phone, members in found.items():
        held[("members_by_phone", phone)] = members


def on_duty(
    session: Session, unit: Region, *, now: datetime, tz: ZoneInfo
) -> tuple[list[Member], bool]:
    """The unit's members on duty at `now` (shifts, overrides and leave: see
    app/directory/rosters.py); all its members not on leave when nobody is.

    Returns the members and whether they came from the roster (False: fallback).
    """
    members, from_roster = memo.cached(
        session,
        ("on_duty", unit.id, now),
        lambda: rosters.on_duty(session, unit, now=now, tz=tz),
    )
    return list(members), from_roster


def member_name(session: Session, phone: str) -> str | None:
    member = session.scalar(select(Member).where(Member.phone == phone).limit(1))
    return member.name if member else None
