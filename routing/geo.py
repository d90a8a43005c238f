"""Locations: which grid's polygon contains a point (shapely STRtree).

Pure: GeoJSON geometries (dicts) in, grid codes out. GeoJSON coordinates are
`[longitude, latitude]`; the functions here take latitude first, as the
gateway's `Latitude`/`Longitude` parameters and people do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shapely import STRtree
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry


class InvalidGeometry(ValueError):
    """A geometry that is not a valid polygon or multipolygon."""


def polygon(geometry: Mapping[str, Any]) -> BaseGeometry:
    """A GeoJSON Polygon/MultiPolygon as a valid shapely geometry, or InvalidGeometry."""
    kind = geometry.get("type") if isinstance(geometry, Mapping) else None
    if kind not in ("Polygon", "MultiPolygon"):
        raise InvalidGeometry(f"geometry type {kind!r} is not Polygon or MultiPolygon")
    try:
        geom = shape(geometry)
    except Exception as exc:  # shapely raises several types for malformed input
        raise InvalidGeometry(f"malformed {kind}: {exc}") from exc
    polygons = geometry["coordinates"] if kind == "MultiPolygon" else [geometry["coordinates"]]
    for rings in polygons:
        for ring in rings:
            _check_ring(ring)
    if geom.is_empty or not geom.is_valid:
        raise InvalidGeometry(f"{kind} is empty or invalid (self-intersecting?)")
    return geom


def _check_ring(ring: Any) -> None:
    """RFC 7946: a ring is closed (its last position is its first), and every
    position is a longitude and latitude on Earth; shapely would close an open
    ring silently and take any number, so a typo could cover the planet."""
    if ring[0] != ring[-1]:
        raise InvalidGeometry(f"ring not closed: it starts at {ring[0]} and ends at {ring[-1]}")
    for position in ring:
        lon, lat = float(position[0]), float(position[1])
        if not (math.isfinite(lon) and math.isfinite(lat)) or abs(lon) > 180 or abs(lat) > 90:
            raise InvalidGeometry(f"position {position} is not [longitude, latitude] on Earth")


def parse_location(params: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """(latitude, longitude) from webhook parameters, or None if absent or nonsense."""
    if not params:
        return None
    try:
        lat = float(str(params["Latitude"]).strip())
        lon = float(str(params["Longitude"]).strip())
    except (KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        return None
    return lat, lon


@dataclass
class GridLocator:
    """Grid polygons in an STRtree; `locate` answers the grid containing a point."""

    codes: list[str] = field(default_factory=list)
    geometries: list[BaseGeometry] = field(default_factory=list)
    tree: STRtree | None = None

    @classmethod
    def build(cls, shapes: Iterable[tuple[str, Mapping[str, Any]]]) -> GridLocator:
        locator = cls()
        for code, geometry in shapes:
            try:
                locator.geometries.append(polygon(geometry))
            except InvalidGeometry:
                continue  # the importer refuses these; never fail a lookup over one
            locator.codes.append(code)
        if locator.geometries:
            locator.tree = STRtree(locator.geometries)
        return locator

    def __len__(self) -> int:
        return len(self.codes)

    def locate(self, lat: float, lon: float) -> str | None:
        """The grid whose polygon contains the point; None outside every grid.

        On a shared border (or overlapping polygons) the point is in several:
        that is not a place to guess, so the answer is None as well.
        """
        if self.tree is None:
            return None
        point = Point(lon, lat)
        hits = self.tree.query(point, predicate="covered_by")
        codes = {self.codes[int(i)] for i in hits}
        return codes.pop() if len(codes) == 1 else None
