"""Directory read endpoints: the office itself, its regions, members, who is on duty."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.deps import AUTH_ERRORS, READ_ERRORS, CallerDep
from app.deps import RuntimeDep, SessionDep
from app.directory import rosters
from app.directory.offices import region_filter, region_ids, visible_region
from app.models.directory import Member, Region

router = APIRouter(prefix="/api/v1", tags=["directory"])

RegionLevel = Literal["county", "town", "community", "grid"]


class OfficeOut(BaseModel):
    code: str = Field(description="a town or county code, or CITY")
    name: str
    level: Literal["town", "county", "city"]
    scope: Literal["read", "write"]
    key_prefix: str


class RegionOut(BaseModel):
    code: str
    name: str
    level: RegionLevel
    parent: str | None = Field(description="the parent region's code")


class MemberOut(BaseModel):
    name: str
    phone: str = Field(description="E.164; usable with the `assign` action")
    role: str
    unit: str = Field(description="the grid, town or county code the member serves")


class OnDutyOut(BaseModel):
    unit: str
    from_roster: bool = Field(description="false: no shift covers now, so the whole unit")
    members: list[MemberOut]


def _region(region: Region) -> dict[str, Any]:
    return {
        "code": region.code,
        "name": region.name,
        "level": region.level,
        "parent": region.parent.code if region.parent else None,
    }


def _member(member: Member) -> dict[str, Any]:
    return {
        "name": member.name,
        "phone": member.phone,
        "role": member.role,
        "unit": member.unit.code,
    }


@router.get("/office", response_model=OfficeOut, responses=AUTH_ERRORS)
def office(caller: CallerDep) -> dict[str, Any]:
    """The office the API key belongs to."""
    return {
        "code": caller.office.code,
        "name": caller.office.name,
        "level": caller.office.level,
        "scope": caller.scope,
        "key_prefix": caller.prefix,
    }


@router.get("/regions", response_model=list[RegionOut], responses=AUTH_ERRORS)
def list_regions(
    caller: CallerDep,
    session: SessionDep,
    level: RegionLevel | None = None,
    parent: Annotated[str | None, Query(max_length=64, description="parent code")] = None,
) -> list[dict[str, Any]]:
    """The office's region and every region under it (towns, communities, grids)."""
    stmt = select(Region).where(region_filter(session, caller.office))
    if level is not None:
        stmt = stmt.where(Region.level == level)
    if parent is not None:
        stmt = stmt.where(
            Region.parent_id == select(Region.id).where(Region.code == parent).scalar_subquery()
        )
    return [_region(r) for r in session.scalars(stmt.order_by(Region.code))]


@router.get("/grids", response_model=list[RegionOut], responses=AUTH_ERRORS)
def list_grids(caller: CallerDep, session: SessionDep) -> list[dict[str, Any]]:
    """The grids of the office's area."""
    return list_regions(caller, session, level="grid", parent=None)


@router.get("/regions/{code}", response_model=RegionOut, responses=READ_ERRORS)
def get_region(code: str, caller: CallerDep, session: SessionDep) -> dict[str, Any]:
    return _region(visible_region(session, caller.office, code))


def _members(session: Session, unit_ids: set[int] | None) -> list[Member]:
    stmt = select(Member).where(Member.active.is_(True))
    if unit_ids is not None:
        stmt = stmt.where(Member.unit_id.in_(unit_ids))
    return list(session.scalars(stmt.order_by(Member.unit_id, Member.id)))


@router.get("/members", response_model=list[MemberOut], responses=AUTH_ERRORS)
def list_members(
    caller: CallerDep,
    session: SessionDep,
    unit: Annotated[str | None, Query(max_length=64, description="a region code")] = None,
) -> list[dict[str, Any]]:
    """Team members and duty staff of the office's area (of one unit with `unit`)."""
    if unit is not None:
        region = session.scalar(
            select(Region).where(Region.code == unit, region_filter(session, caller.office))
        )
        return [_member(m) for m in _members(session, {region.id} if region else set())]
    return [_member(m) for m in _members(session, region_ids(session, caller.office))]


@router.get("/regions/{code}/on-duty", response_model=OnDutyOut, responses=READ_ERRORS)
def on_duty(code: str, caller: CallerDep, session: SessionDep, rt: RuntimeDep) -> dict[str, Any]:
    """Who of a unit (grid, town or county office) is on shift now.

    With no shift covering the moment, the whole unit (that is who gets its cases).
    """
    region = visible_region(session, caller.office, code)
    members, from_roster = rosters.on_duty(session, region, now=rt.clock(), tz=rt.settings.tz)
    return {
        "unit": region.code,
        "from_roster": from_roster,
        "members": [_member(m) for m in members],
    }
