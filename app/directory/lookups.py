"""Read-side lookups of regions and members (rosters: app/directory/rosters.py)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

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


def members_by_phone(session: Session, phone: str) -> list[Member]:
    """The active members with this phone: one person may serve several units."""
    return list(
        session.scalars(
            select(Member).where(Member.phone == phone, Member.active.is_(True)).order_by(Member.id)
        )
    )


def member_name(session: Session, phone: str) -> str | None:
    member = session.scalar(select(Member).where(Member.phone == phone).limit(1))
    return member.name if member else None
