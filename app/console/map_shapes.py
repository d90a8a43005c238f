"""The map's drawn shapes: grid boundaries, and towns and counties as the union
of their grids, projected and simplified once and kept in memory.

Drawing a county means merging a few hundred polygons; that is done once per
unit and geometry version, not per request. The key is the unit shown, not
the office: the paths of a unit are the same whoever looks at them, and the
pages check that the office may see the unit before they ask for its paths.
The version is the count and last change of the boundaries and of the
regions (a region moved to another town changes the towns' outlines).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from shapely import union_all
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.console.areas import CHILD_LEVEL, Tree, Unit
from app.console.svg import Projected, project
from app.models.directory import GridShape, Region
from app.runtime import Runtime
from routing.geo import InvalidGeometry, polygon

CACHE_KEY = "console_map_paths"
MAX_ENTRIES = 256
_lock = threading.Lock()


def geometry_version(session: Session) -> tuple[str, ...]:
    shapes = session.execute(select(func.count(GridShape.id), func.max(GridShape.updated_at))).one()
    regions = session.execute(select(func.count(Region.id), func.max(Region.updated_at))).one()
    return tuple(map(str, (*shapes, *regions)))


def shaped_grid_ids(session: Session) -> set[int]:
    return set(session.scalars(select(GridShape.grid_id)))


def _grid_geometries(session: Session, grid_ids: list[int]) -> dict[int, BaseGeometry]:
    out: dict[int, BaseGeometry] = {}
    for chunk in range(0, len(grid_ids), 5000):
        ids = grid_ids[chunk : chunk + 5000]
        rows = session.execute(
            select(GridShape.grid_id, GridShape.geometry).where(GridShape.grid_id.in_(ids))
        )
        for grid_id, geometry in rows:
            try:
                out[grid_id] = polygon(geometry)
            except InvalidGeometry:
                continue  # the importer refuses these; a map never fails over one
    return out


def build_paths(session: Session, tree: Tree, unit: Unit) -> Projected:
    """The projected path of each area `unit`'s map draws (by area code)."""
    level = CHILD_LEVEL[unit.level]
    children = tree.below(unit, level)
    members = {c.code: tree.below(c, "grid") if level != "grid" else [c] for c in children}
    geoms = _grid_geometries(session, sorted({g.id for gs in members.values() for g in gs}))
    shapes: dict[str, BaseGeometry] = {}
    for code, grids in members.items():
        parts = [geoms[g.id] for g in grids if g.id in geoms]
        if parts:
            # A town's outline: its grids merged, so inner borders are not drawn.
            shapes[code] = parts[0] if len(parts) == 1 else union_all(parts)
    return project(shapes)


def paths_for(session: Session, rt: Runtime, tree: Tree, unit: Unit) -> Projected:
    version = geometry_version(session)
    key: Hashable = (unit.code, unit.level)
    with _lock:
        cache = rt.caches.get(CACHE_KEY)
        if not isinstance(cache, tuple) or cache[0] != version:
            cache = (version, OrderedDict())
            rt.caches[CACHE_KEY] = cache
        entries: OrderedDict[Hashable, Projected] = cache[1]
        found = entries.get(key)
        if found is not None:
            entries.move_to_end(key)
            return found
    built = build_paths(session, tree, unit)
    with _lock:
        entries[key] = built
        while len(entries) > MAX_ENTRIES:
            entries.popitem(last=False)
    return built
