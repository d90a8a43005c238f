"""The region tree as the console's map and duty pages walk it: county → town → grid.

Communities sit between towns and grids in the data but are not a level of
the console: a town's grids are all the grids under it, however deep.
What an office may see comes from `app.directory.offices.region_ids` (its subtree).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.directory.offices import CITY_CODE, Office, region_ids
from app.errors import NotFound, Unprocessable
from app.models.directory import Region

# What a unit's map shows: a county its towns, a town its grids.
CHILD_LEVEL = {"city": "county", "county": "town", "town": "grid"}


@dataclass(frozen=True)
class Unit:
    id: int
    code: str
    name: str
    level: str
    parent_id: int | None


def _code(unit: Unit) -> str:
    return unit.code


CITY_UNIT = Unit(id=0, code=CITY_CODE, name="", level="city", parent_id=None)


class Tree:
    """The regions an office may see, with parent links."""

    def __init__(self, units: list[Unit]) -> None:
        self.by_id = {u.id: u for u in units}
        self.by_code = {u.code: u for u in units}
        self._children: dict[int | None, list[Unit]] = defaultdict(list)
        for u in sorted(units, key=_code):
            parent = u.parent_id if u.parent_id in self.by_id else None
            self._children[parent].append(u)

    def ancestor(self, unit: Unit, level: str) -> Unit | None:
        node: Unit | None = unit
        for _ in range(8):
            if node is None or node.level == level:
                return node
            node = self.by_id.get(node.parent_id) if node.parent_id is not None else None
        return None

    def below(self, unit: Unit, level: str) -> list[Unit]:
        """The units of `level` under `unit` (any depth), by code; the city: all of them."""
        if unit.level == "city":
            return sorted((u for u in self.by_code.values() if u.level == level), key=_code)
        out: list[Unit] = []
        stack = list(self._children.get(unit.id, []))
        while stack:
            node = stack.pop()
            if node.level == level:
                out.append(node)
            else:
                stack.extend(self._children.get(node.id, []))
        return sorted(out, key=_code)


def visible_tree(session: Session, office: Office) -> Tree:
    ids = region_ids(session, office)
    stmt = select(Region.id, Region.code, Region.name, Region.level, Region.parent_id)
    if ids is not None:
        stmt = stmt.where(Region.id.in_(ids))
    return Tree([Unit(*row) for row in session.execute(stmt)])


def office_unit(tree: Tree, office: Office) -> Unit:
    if office.level == "city":
        return CITY_UNIT
    unit = tree.by_code.get(office.code)
    if unit is None:  # cannot happen: an office's subtree holds the office
        raise NotFound("no such unit")
    return unit


def pick_unit(tree: Tree, office: Office, code: str | None) -> Unit:
    """The county or town `code` names, if the office may see it; its own unit by default.

    Anything outside the office's area is a 404, as the API answers; a grid or
    community is not a unit these pages drill into (422).
    """
    if not code or code == office.code:
        return office_unit(tree, office)
    if code == CITY_CODE and office.level == "city":
        return CITY_UNIT
    unit = tree.by_code.get(code)
    if unit is None:
        raise NotFound(f"no unit {code!r} in this office's area")
    if unit.level not in ("county", "town"):
        raise Unprocessable(f"{code} is a {unit.level}; choose a county or a town")
    return unit


def trail(tree: Tree, office: Office, unit: Unit) -> list[Unit]:
    """The breadcrumb from the office's unit down to `unit`."""
    top = office_unit(tree, office)
    chain: list[Unit] = []
    node: Unit | None = unit
    while node is not None and node.code != top.code:
        chain.append(node)
        node = tree.by_id.get(node.parent_id) if node.parent_id is not None else None
        while node is not None and node.level == "community":
            node = tree.by_id.get(node.parent_id) if node.parent_id is not None else None
    chain.append(top)
    return list(reversed(chain))
