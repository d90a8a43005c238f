"""Offices and what they may see: the one visibility rule of the office API.

An office is a region of level `town` or `county`, or the city office, which
has no region row (the region tree stops at county-level units) and is named by
the reserved code `CITY`. A town office sees the cases whose current town is
its town, a county office those whose county is its county (all of its towns),
the city office every case, including those still awaiting an address.
Everything the API shows goes through `case_filter` or `region_filter`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import Session

from app.errors import DomainError, NotFound
from app.models.cases import Case
from app.models.directory import Region
from sms.templates import word

CITY_CODE = "CITY"
OFFICE_LEVELS = ("town", "county")


class UnknownOffice(DomainError):
    status_code = 422
    code = "unknown_office"


@dataclass(frozen=True)
class Office:
    code: str
    name: str
    level: str  # town, county or city
    region_id: int | None  # None for the city office


def office_by_code(session: Session, code: str) -> Office:
    """The office named `code`: `CITY`, or a town/county region code."""
    region = session.scalar(select(Region).where(Region.code == code))
    if code == CITY_CODE:
        if region is not None:
            raise UnknownOffice(f"a region is coded {CITY_CODE}, which names the city office")
        return Office(code=CITY_CODE, name="市", level="city", region_id=None)
    if region is None:
        raise UnknownOffice(f"no region {code!r}")
    if region.level not in OFFICE_LEVELS:
        raise UnknownOffice(f"{code} is a {region.level}; offices are towns and counties")
    return Office(code=region.code, name=region.name, level=region.level, region_id=region.id)


def case_filter(office: Office) -> ColumnElement[bool]:
    """The WHERE clause of the cases `office` may see and act on."""
    if office.level == "town":
        return Case.town_id == office.region_id
    if office.level == "county":
        return Case.county_id == office.region_id
    return true()


MAX_ID = 2**31 - 1  # primary keys are 32-bit integers on PostgreSQL


def parse_id(text: str) -> int | None:
    """A row id from a URL, or None for anything that cannot be one."""
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def visible_case(session: Session, office: Office, case_id: str) -> Case:
    """The case `case_id` if `office` may see it; 404 for anything else, whatever the id."""
    row_id = parse_id(case_id)
    if row_id is None:
        raise NotFound("no such case")
    case = session.scalar(select(Case).where(Case.id == row_id, case_filter(office)))
    if case is None:
        raise NotFound("no such case")
    return case


def region_ids(session: Session, office: Office) -> set[int] | None:
    """Ids of the office's region and all regions under it; None = every region (city)."""
    if office.region_id is None:
        return None
    tree = select(Region.id).where(Region.id == office.region_id).cte(recursive=True)
    tree = tree.union_all(select(Region.id).where(Region.parent_id == tree.c.id))
    return set(session.scalars(select(tree.c.id)))


def region_filter(session: Session, office: Office) -> ColumnElement[bool]:
    """The WHERE clause of the regions `office` may see (its own and those below)."""
    ids = region_ids(session, office)
    return true() if ids is None else Region.id.in_(ids)


def visible_region(session: Session, office: Office, code: str) -> Region:
    region = session.scalar(
        select(Region).where(Region.code == code, region_filter(session, office))
    )
    if region is None:
        raise NotFound("no such region")
    return region


def display_name(session: Session, actor: str, locale: str) -> str | None:
    """The office's name for an API actor `api:<office code>:<key prefix>`."""
    parts = actor.split(":")
    if len(parts) != 3 or parts[0] != "api":
        return None
    if parts[1] == CITY_CODE:
        return word("level.city", locale)
    region = session.scalar(select(Region).where(Region.code == parts[1]))
    return region.name if region is not None else None
