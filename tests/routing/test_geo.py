"""Grid polygons: which grid contains a shared location."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.geo import GridLocator, InvalidGeometry, parse_location, polygon


def square(x: float, y: float, size: float = 0.01) -> dict[str, object]:
    ring = [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


def locator() -> GridLocator:
    return GridLocator.build([("A", square(122.10, 30.00)), ("B", square(122.11, 30.00))])


def test_a_point_inside_one_grid() -> None:
    assert locator().locate(30.005, 122.105) == "A"
    assert locator().locate(30.005, 122.115) == "B"


def test_outside_every_grid_or_on_a_shared_border_is_no_answer() -> None:
    assert locator().locate(29.9, 122.5) is None
    assert locator().locate(30.005, 122.11) is None  # on the border of A and B
    assert GridLocator.build([]).locate(30.0, 122.1) is None


def test_multipolygons_and_invalid_shapes() -> None:
    islands = {
        "type": "MultiPolygon",
        "coordinates": [square(122.0, 30.0)["coordinates"], square(122.2, 30.0)["coordinates"]],
    }
    found = GridLocator.build(
        [("ISLES", islands), ("BAD", {"type": "Point", "coordinates": [0, 0]})]
    )
    assert len(found) == 1
    assert found.locate(30.005, 122.205) == "ISLES"
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    with pytest.raises(InvalidGeometry, match="invalid"):
        polygon(bowtie)
    with pytest.raises(InvalidGeometry, match="malformed"):
        polygon({"type": "Polygon", "coordinates": [[[0, 0]]]})


@pytest.mark.parametrize(
    ("ring", "why"),
    [
        ([[122.0, 30.0], [122.1, 30.0], [122.1, 30.1], [122.0, 30.1]], "not closed"),
        ([[-1e308, -89], [1e308, -89], [1e308, 89], [-1e308, 89], [-1e308, -89]], "on Earth"),
        ([[122.0, 30.0], [122.1, 30.0], [122.1, 91.0], [122.0, 30.0]], "on Earth"),
    ],
)
def test_open_rings_and_positions_off_the_earth_are_refused(ring, why) -> None:
    with pytest.raises(InvalidGeometry, match=why):
        polygon({"type": "Polygon", "coordinates": [ring]})
    hole_ok = square(122.0, 30.0)["coordinates"]
    with pytest.raises(InvalidGeometry, match=why):
        polygon({"type": "MultiPolygon", "coordinates": [hole_ok, [ring]]})


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"Latitude": "30.005", "Longitude": "122.105"}, (30.005, 122.105)),
        ({"Latitude": " 30 ", "Longitude": "122"}, (30.0, 122.0)),
        ({"Latitude": "30.0"}, None),
        ({"Latitude": "north", "Longitude": "122"}, None),
        ({"Latitude": "91", "Longitude": "122"}, None),
        ({"Latitude": "nan", "Longitude": "122"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_parse_location(
    params: dict[str, str] | None, expected: tuple[float, float] | None
) -> None:
    assert parse_location(params) == expected


@given(st.dictionaries(st.sampled_from(["Latitude", "Longitude", "Body"]), st.text(max_size=12)))
def test_parse_location_never_raises(params: dict[str, str]) -> None:
    found = parse_location(params)
    assert found is None or (abs(found[0]) <= 90 and abs(found[1]) <= 180)
