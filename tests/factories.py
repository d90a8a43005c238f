"""Small keyword-only factories, and a little city most tests share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.models.directory import Address, Member, Region, Resident, Shift
from routing.address import normalize_address


def make_region(
    session: Session, *, code: str, name: str, level: str, parent: Region | None = None
) -> Region:
    region = Region(code=code, name=name, level=level, parent_id=parent.id if parent else None)
    session.add(region)
    session.flush()
    return region


def make_member(
    session: Session, *, phone: str, name: str, unit: Region, role: str = "cadre"
) -> Member:
    member = Member(phone=phone, name=name, role=role, unit_id=unit.id)
    session.add(member)
    session.flush()
    return member


def make_address(session: Session, *, address: str, grid: Region) -> Address:
    row = Address(address=address, normalized=normalize_address(address), grid_id=grid.id)
    session.add(row)
    session.flush()
    return row


def make_resident(
    session: Session,
    *,
    phone: str,
    name: str | None = None,
    grid: Region | None = None,
    address: str | None = None,
    tags: str = "",
) -> Resident:
    row = Resident(
        phone=phone,
        name=name,
        grid_id=grid.id if grid else None,
        address=address,
        tags=tags,
        address_source="import" if address else None,
    )
    session.add(row)
    session.flush()
    return row


def make_shift(
    session: Session,
    *,
    unit: Region,
    phone: str,
    starts_at: datetime,
    ends_at: datetime,
    rrule: str | None = None,
) -> Shift:
    row = Shift(unit_id=unit.id, phone=phone, starts_at=starts_at, ends_at=ends_at, rrule=rrule)
    session.add(row)
    session.flush()
    return row


# Phones of the little city (E.164).
WORKER_A = "+8613800000001"  # grid DH-01, on the weekday day shift
WORKER_B = "+8613800000002"  # grid DH-01, off shift
WORKER_C = "+8613800000003"  # grid DH-02
TOWN_OFFICE = "+8613900000010"
COUNTY_OFFICE = "+8613900000020"
RESIDENT = "+8613700000001"  # registered in DH-01
STRANGER = "+8613700000099"  # not registered


@dataclass
class City:
    county: Region
    town: Region
    community: Region
    grid1: Region
    grid2: Region


def make_city(session: Session) -> City:
    county = make_region(session, code="DH", name="定海区", level="county")
    town = make_region(session, code="DH-JF", name="解放街道", level="town", parent=county)
    community = make_region(
        session, code="DH-JF-WS", name="翁山社区", level="community", parent=town
    )
    grid1 = make_region(session, code="DH-01", name="翁山一网格", level="grid", parent=community)
    grid2 = make_region(session, code="DH-02", name="翁山二网格", level="grid", parent=community)
    make_member(session, phone=WORKER_A, name="张伟", unit=grid1)
    make_member(session, phone=WORKER_B, name="李娜", unit=grid1, role="doctor")
    make_member(session, phone=WORKER_C, name="王强", unit=grid2)
    make_member(session, phone=TOWN_OFFICE, name="街道值班", unit=town, role="office")
    make_member(session, phone=COUNTY_OFFICE, name="区值班", unit=county, role="office")
    make_address(session, address="翁山新村3幢", grid=grid1)
    make_address(session, address="翁山新村", grid=grid1)
    make_address(session, address="人民路12号", grid=grid2)
    make_resident(session, phone=RESIDENT, name="陈阿姨", grid=grid1, address="翁山新村3幢")
    # Weekdays 08:00-18:00 local: worker A only.
    make_shift(
        session,
        unit=grid1,
        phone=WORKER_A,
        starts_at=datetime(2026, 1, 5, 8),
        ends_at=datetime(2026, 1, 5, 18),
        rrule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
    )
    return City(county=county, town=town, community=community, grid1=grid1, grid2=grid2)
