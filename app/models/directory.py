"""Regions, the people in them and where they are: the region tree (county, town,
community, grid), team members, residents, the gazetteer, grid shapes, rosters
(shifts, one-off overrides, leave).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    String,
    UniqueConstraint,
)
from sqlalchemy import DateTime as NaiveDateTime
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, utcnow

REGION_LEVELS = ("county", "town", "community", "grid")


class Region(Base):
    """A node of the region tree: county-level unit > town > community > grid."""

    __tablename__ = "regions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    parent: Mapped[Region | None] = relationship(remote_side=[id], lazy="joined", join_depth=3)


class Member(Base):
    """A grid team member, or a town/county office duty phone (unit = that office)."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("phone", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    unit: Mapped[Region] = relationship(lazy="joined")


class Resident(Base):
    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str | None] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(300))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    tags: Mapped[str] = mapped_column(String(300), default="")
    opted_out: Mapped[bool] = mapped_column(default=False)
    # Where the address came from: "import", or "sms" when the resident told us.
    address_source: Mapped[str | None] = mapped_column(String(16))
    address_confirmed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    grid: Mapped[Region | None] = relationship(lazy="joined")


class Address(Base):
    """A gazetteer entry: an address or address prefix that belongs to a grid."""

    __tablename__ = "addresses"
    __table_args__ = (UniqueConstraint("address", "grid_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(300))
    normalized: Mapped[str] = mapped_column(String(300), index=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class GridShape(Base):
    """A grid's boundary from `grids.geojson`: a GeoJSON Polygon or MultiPolygon."""

    __tablename__ = "grid_shapes"

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), unique=True)
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Shift(Base):
    """A roster shift: who of a unit is on duty, once or recurring (RFC 5545 RRULE).

    starts_at/ends_at are naive wall-clock times in the configured time zone.
    """

    __tablename__ = "shifts"
    __table_args__ = (UniqueConstraint("unit_id", "phone", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    phone: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[datetime] = mapped_column(NaiveDateTime(timezone=False))
    ends_at: Mapped[datetime] = mapped_column(NaiveDateTime(timezone=False))
    rrule: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RosterOverride(Base):
    """A one-off change to a unit's roster: `phone` is on duty from `starts_at`
    to `ends_at` (naive wall clock in the configured zone, like shifts), in place
    of `replaces` when given (a replacement), or in addition to the roster."""

    __tablename__ = "roster_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    phone: Mapped[str] = mapped_column(String(32))
    replaces: Mapped[str | None] = mapped_column(String(32))
    starts_at: Mapped[datetime] = mapped_column(NaiveDateTime(timezone=False))
    ends_at: Mapped[datetime] = mapped_column(NaiveDateTime(timezone=False))
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MemberLeave(Base):
    """A member's leave (naive wall clock): off every roster and every fallback."""

    __tablename__ = "member_leaves"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), index=True)
    starts_at: Mapped[datetime] = mapped_column(NaiveDateTime(timezone=False))
    ends_at: Mapped[datetime] = mapped_column(NaiveDateTime(timezone=False))
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
