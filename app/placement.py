"""Placing a sender in a grid: loads the gazetteer and the resident, asks `routing`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import directory
from app.models import Address, Region, Resident
from app.runtime import Runtime
from routing.address import AddressMatch, Entry, GazetteerIndex, normalize_address


@dataclass(frozen=True)
class Placement:
    grid: Region | None
    method: str  # address, registered, none
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return str(self.evidence.get("reason", ""))


def _index_key(session: Session) -> tuple[object, ...]:
    """Changes whenever the gazetteer or the region tree (names, parents) changes."""
    addresses = session.execute(
        select(func.count(Address.id), func.max(Address.id), func.max(Address.updated_at))
    ).one()
    regions = session.execute(
        select(func.count(Region.id), func.max(Region.id), func.max(Region.updated_at))
    ).one()
    return (*map(str, addresses), *map(str, regions))


def gazetteer(session: Session, rt: Runtime) -> GazetteerIndex:
    """The gazetteer index, rebuilt only when the addresses table changed."""
    key = _index_key(session)
    cached = rt.caches.get("gazetteer")
    if isinstance(cached, tuple) and cached[0] == key:
        return cached[1]
    regions = {r.id: r for r in session.scalars(select(Region))}

    def area(region_id: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        codes: list[str] = []
        names: list[str] = []
        node = regions.get(region_id)
        while node is not None and len(codes) < 8:
            codes.append(node.code)
            names.append(normalize_address(node.name))
            node = regions.get(node.parent_id) if node.parent_id else None
        return tuple(codes), tuple(names[1:])

    entries = []
    for address in session.scalars(select(Address)):
        grid = regions.get(address.grid_id)
        if grid is None:
            continue
        codes, names = area(grid.id)
        entries.append(
            Entry(
                text=address.address,
                normalized=address.normalized,
                grid=grid.code,
                area=codes,
                area_names=names,
            )
        )
    index = GazetteerIndex.build(entries)
    rt.caches["gazetteer"] = (key, index)
    return index


def _evidence(match: AddressMatch, grid: Region | None) -> dict[str, Any]:
    evidence: dict[str, Any] = {
        "reason": f"matched {match.entry} → {grid.code}" if grid is not None else match.reason,
        "entry": match.entry,
        "candidates": [{"address": c.text, "grid": c.grid} for c in match.candidates[:5]],
    }
    return evidence


def place(session: Session, rt: Runtime, *, phone: str, text: str) -> Placement:
    """Decide the grid for a text from `phone`.

    An address in the text wins (the request is about that place); otherwise
    the registered home. Ambiguous addresses are resolved by the sender's home
    area when there is one, else reported with their candidates.
    """
    resident = session.scalar(select(Resident).where(Resident.phone == phone))
    home_area: tuple[str, ...] = ()
    if resident is not None and resident.grid is not None:
        home_area = tuple(r.code for r in directory.ancestors(resident.grid))
    match = gazetteer(session, rt).match(text, home_area=home_area)
    if match.grid is not None:
        grid = directory.region_by_code(session, match.grid)
        if grid is not None:
            return Placement(grid, "address", _evidence(match, grid))
    if resident is not None and resident.grid is not None:
        evidence = {
            "reason": f"registered phone → {resident.grid.code}",
            "resident_id": resident.id,
        }
        if match.candidates:
            evidence["ignored_candidates"] = [
                {"address": c.text, "grid": c.grid} for c in match.candidates[:5]
            ]
        return Placement(resident.grid, "registered", evidence)
    return Placement(None, "none", _evidence(match, None))
