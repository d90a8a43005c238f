"""Shared by the bench scripts: the generated Zhoushan-scale city as a gazetteer."""

from __future__ import annotations

from app.importer.zhoushan_city import City, generate
from routing.address import Entry, normalize_address
from routing.gazetteer import Gazetteer


def areas(city: City) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """grid code → (its and its ancestors' codes, the ancestors' normalised names)."""
    parent = {code: (name, up) for code, name, _level, up in city.regions}
    out: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for grid in city.grids:
        codes, names, node = [], [], grid
        while node:
            name, up = parent[node]
            codes.append(node)
            names.append(normalize_address(name))
            node = up
        out[grid] = (tuple(codes), tuple(names[1:]))
    return out


def entries(city: City) -> list[Entry]:
    """The city's gazetteer entries, as `app.inbound.placement.gazetteer` builds them."""
    area = areas(city)
    return [
        Entry(
            text=p.text,
            normalized=normalize_address(p.text),
            grid=p.grid,
            area=area[p.grid][0],
            area_names=area[p.grid][1],
        )
        for p in city.places
    ]


def city_gazetteer(city: City | None = None) -> tuple[City, Gazetteer]:
    city = city or generate()
    return city, Gazetteer.build(entries(city))
