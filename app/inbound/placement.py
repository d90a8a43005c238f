"""Placing a sender in a grid: loads the gazetteer, grid shapes and the resident, asks `routing`.

Precedence (`routing.placement`, DESIGN.md): a confident address in the text
(the request is about that place) > a shared location (Latitude/Longitude) >
the registered home. An address that is ambiguous or weak is never forwarded
on a guess: the resident is asked, with numbered candidates or for the
missing part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.directory import lookups as directory
from app.models.directory import Address, Region, Resident
from app.models.messages import InboundMessage
from app.runtime import Runtime
from routing.address import Entry, normalize_address
from routing.gazetteer import Decision, Gazetteer, home_answers
from routing.geo import GridLocator, parse_location
from routing.placement import answer_readings, choice_number, winner
from sms.templates import word


@dataclass(frozen=True)
class Placement:
    grid: Region | None
    method: str  # address, location, registered, ask, none
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return str(self.evidence.get("reason", ""))

    @property
    def offered(self) -> list[dict[str, str]]:
        return list(self.evidence.get("offered") or [])

    def question(self, locale: str) -> tuple[str, dict[str, str]]:
        """The template (and its parameters) that asks the resident what is missing."""
        if self.offered:
            sep = word("sep", locale)
            choices = sep.join(
                word("choice", locale, n=str(i), label=o["label"])
                for i, o in enumerate(self.offered, 1)
            )
            return "ask_choice", {"choices": choices}
        missing = self.evidence.get("missing")
        key = self.evidence.get("key")
        if missing and key:
            example = {"building": "3幢", "number": "12号", "town": "12号"}.get(str(missing), "")
            return "ask_part", {
                "place": str(key),
                "part": word(f"part.{missing}", locale),
                "example": f"{key}{example}" if example else str(key),
            }
        return "ask_address", {}


def _index_key(session: Session) -> tuple[object, ...]:
    """What the gazetteer was built from, in one query: each table's row
    count, highest id and latest change (an import elsewhere changes one)."""

    def stats(model: type[Address] | type[Region]) -> list[Any]:
        aggregates = (func.count(model.id), func.max(model.id), func.max(model.updated_at))
        return [select(a).scalar_subquery() for a in aggregates]

    return tuple(map(str, session.execute(select(*stats(Address), *stats(Region))).one()))


def gazetteer(session: Session, rt: Runtime) -> Gazetteer:
    """The gazetteer, rebuilt only when the addresses or regions changed."""
    key = _index_key(session)
    cached = rt.caches.get("gazetteer")
    if isinstance(cached, tuple) and cached[0] == key and isinstance(cached[1], Gazetteer):
        return cached[1]
    regions = {r.id: r for r in session.scalars(select(Region))}
    areas: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}

    def area(region_id: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if region_id not in areas:
            codes: list[str] = []
            names: list[str] = []
            node = regions.get(region_id)
            while node is not None and len(codes) < 8:
                codes.append(node.code)
                names.append(normalize_address(node.name))
                node = regions.get(node.parent_id) if node.parent_id else None
            areas[region_id] = (tuple(codes), tuple(names[1:]))
        return areas[region_id]

    entries = []
    for text, normalized, grid_id in session.execute(
        select(Address.address, Address.normalized, Address.grid_id)
    ):
        grid = regions.get(grid_id)
        if grid is None:
            continue
        codes, names = area(grid.id)
        entries.append(
            Entry(text=text, normalized=normalized, grid=grid.code, area=codes, area_names=names)
        )
    index = Gazetteer.build(entries)
    rt.caches["gazetteer"] = (key, index)
    return index


def locator(session: Session, rt: Runtime) -> GridLocator:
    """The grid polygons (from `grids.geojson`), rebuilt only when they changed."""
    from app.models.directory import GridShape

    key = tuple(
        map(
            str,
            session.execute(select(func.count(GridShape.id), func.max(GridShape.updated_at))).one(),
        )
    )
    cached = rt.caches.get("grid_locator")
    if isinstance(cached, tuple) and cached[0] == key and isinstance(cached[1], GridLocator):
        return cached[1]
    rows = session.execute(
        select(Region.code, GridShape.geometry).join(Region, Region.id == GridShape.grid_id)
    )
    built = GridLocator.build((code, geometry) for code, geometry in rows)
    rt.caches["grid_locator"] = (key, built)
    return built


def location_of(session: Session, inbound_id: int | None) -> tuple[float, float] | None:
    """The (latitude, longitude) the inbound message carried, if any."""
    if inbound_id is None:
        return None
    message = session.get(InboundMessage, inbound_id)
    return parse_location(message.params) if message is not None else None


def resident_of(session: Session, phone: str) -> Resident | None:
    """The resident registered with `phone`."""
    return session.scalar(select(Resident).where(Resident.phone == phone))


def _home(
    session: Session, phone: str, known: Resident | None
) -> tuple[Resident | None, tuple[str, ...]]:
    resident = known or resident_of(session, phone)
    if resident is None or resident.grid is None:
        return resident, ()
    return resident, tuple(r.code for r in directory.ancestors(resident.grid))


def place(
    session: Session,
    rt: Runtime,
    *,
    phone: str,
    text: str,
    location: tuple[float, float] | None = None,
    resident: Resident | None = None,
) -> Placement:
    """Decide the grid for a text from `phone` (and the location it shared), by
    `routing.placement`'s precedence; the evidence of every source looked at.
    `resident`: the sender's record when the caller has it already.

    It reads the directory only, which the caller's transaction does not
    write: what the transaction has pending is not flushed for it."""
    with session.no_autoflush:
        return _place(session, rt, phone=phone, text=text, location=location, resident=resident)


def _place(
    session: Session,
    rt: Runtime,
    *,
    phone: str,
    text: str,
    location: tuple[float, float] | None,
    resident: Resident | None,
) -> Placement:
    resident, home_area = _home(session, phone, resident)
    decision = gazetteer(session, rt).decide(text, home_area=home_area)
    address_grid = None
    if decision.routed:
        address_grid = directory.region_by_code(session, decision.grid or "")
    location_code = None if location is None else locator(session, rt).locate(*location)
    location_grid = None
    if location_code is not None:
        location_grid = directory.region_by_code(session, location_code)
    home_grid = resident.grid if resident is not None else None
    if home_grid is not None and not home_answers(decision, home_grid.code):
        home_grid = None
    grids = {
        "address": address_grid,
        "location": location_grid,
        "registered": home_grid,
    }
    won = winner(**{method: g.code if g else None for method, g in grids.items()})

    address = decision.evidence()
    others: dict[str, Any] = {}
    if decision.action != "none" and address_grid is None:
        others["address"] = address
    if location is not None and location_grid is None:
        others["location"] = {"at": list(location), "grid": None, "reason": "outside every grid"}
    overruled = {"overruled": others} if others else {}
    if won is None:
        return _ask(decision, others)
    method = won[0]
    grid = grids[method]
    assert grid is not None
    if method == "address":
        why = "a confident address in the text: the request is about that place"
        return Placement(grid, "address", {**address, "won": "address", "why": why})
    if method == "location":
        assert location is not None
        return Placement(
            grid,
            "location",
            {
                "reason": f"location {location[0]:.5f},{location[1]:.5f} → {grid.code}",
                "won": "location",
                "why": "no confident address in the text; the shared location is inside this grid",
                "location": list(location),
                **overruled,
            },
        )
    why = "no confident address or location; the sender's registered home"
    if decision.action == "ask" and decision.how != "fuzzy":
        why = "the place named is ambiguous and the sender's home grid is one of its candidates"
    assert resident is not None
    return Placement(
        grid,
        "registered",
        {
            "reason": f"registered phone → {grid.code}",
            "won": "registered",
            "why": why,
            "resident_id": resident.id,
            "source": resident.address_source,
            **overruled,
        },
    )


def _ask(decision: Decision, others: dict[str, Any]) -> Placement:
    evidence: dict[str, Any] = {**decision.evidence(), "won": None}
    if decision.action == "ask" and not decision.missing and decision.candidates:
        evidence["offered"] = [{"grid": c.grid, "label": c.label} for c in decision.candidates[:3]]
    if "location" in others:
        evidence["location"] = others["location"]
    method = "ask" if decision.action == "ask" else "none"
    return Placement(None, method, evidence)


def choose_offered(
    session: Session, evidence: dict[str, Any] | None, answer: str
) -> Placement | None:
    """A digit answer (`1`, `回复2`) to the candidates offered earlier, if it is one."""
    offered = list((evidence or {}).get("offered") or [])
    number = choice_number(normalize_address(answer) or answer.strip(), len(offered))
    if number is None:
        return None
    choice = offered[number - 1]
    grid = directory.region_by_code(session, str(choice["grid"]))
    if grid is None:
        return None
    return Placement(
        grid,
        "address",
        {
            "reason": f"the resident chose {number}: {choice['label']} → {grid.code}",
            "won": "address",
            "why": "the resident picked one of the offered candidates",
            "how": "choice",
            "entry": choice["label"],
            "remember": choice["label"],
            "offered": offered,
        },
    )


def place_answer(
    session: Session,
    rt: Runtime,
    *,
    phone: str,
    answer: str,
    asked: dict[str, Any] | None,
    summary: str,
    location: tuple[float, float] | None = None,
) -> Placement:
    """Place the resident's answer to a question about their address.

    A digit picks one of the offered candidates; otherwise the answer is read
    alone, then as `routing.placement.answer_readings` says. The first
    confident address wins; else the answer's own question (or none).
    """
    chosen = choose_offered(session, asked, answer)
    if chosen is not None:
        return chosen
    first = place(session, rt, phone=phone, text=answer, location=location)
    if first.method in ("address", "location"):
        return _remembering(first, answer)
    key = (asked or {}).get("key")
    for text in answer_readings(answer, asked_key=str(key) if key else None, first_text=summary):
        again = place(session, rt, phone=phone, text=text)
        if again.method == "address":
            return _remembering(again, str(again.evidence.get("entry") or text))
    return first


def _remembering(placement: Placement, address: str) -> Placement:
    if placement.method != "address":
        return placement
    return Placement(placement.grid, placement.method, {**placement.evidence, "remember": address})
