"""The generated city of Zhoushan's shape (`gridline demo --scale zhoushan`, `bench/`)."""

from __future__ import annotations

import json
from collections import Counter
from itertools import islice
from pathlib import Path

import pytest

from app.importer.zhoushan_city import generate, write_city, write_demo
from routing.address import normalize_address


def test_the_city_has_zhoushans_shape_and_is_the_same_every_time() -> None:
    city = generate()
    levels = Counter(level for _c, _n, level, _p in city.regions)
    assert levels["county"] == 4 and levels["town"] == 43
    assert 2_300 <= levels["grid"] <= 2_420
    assert 360_000 <= sum(p.households for p in city.places) <= 380_000
    assert 20_000 <= len(city.members) <= 22_000
    assert len(city.roster) == 2 * levels["grid"]
    assert set(city.shapes) == set(city.grids)
    kinds = Counter(p.kind for p in city.places)
    assert kinds["building"] and kinds["road"] and kinds["natural"]
    # A long road crosses grids; the same road name is found in several towns.
    renmin = {p.grid.rsplit("-", 2)[0] for p in city.places if p.stem == "人民路"}
    assert len(renmin) > 1
    again = generate()
    assert again.places == city.places and again.members == city.members


def test_every_address_normalises_and_codes_are_unique() -> None:
    city = generate()
    codes = [code for code, _n, _l, _p in city.regions]
    assert len(codes) == len(set(codes))
    assert all(normalize_address(p.text) for p in city.places)
    phones = [m[0] for m in city.members]
    assert len(phones) == len(set(phones))
    first = list(islice(city.residents(), 1000))
    assert len({r[0] for r in first}) == 1000
    assert all(r[3] in city.shapes for r in first)


def test_small_generated_city_writes_the_import_files(tmp_path: Path) -> None:
    city = generate(households=3_000, grids=120)
    write_city(tmp_path, city)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "addresses.csv", "grids.geojson", "members.csv", "regions.csv", "residents.csv",
        "roster.csv",
    ]  # fmt: skip
    features = json.loads((tmp_path / "grids.geojson").read_text(encoding="utf-8"))["features"]
    assert len(features) == len(city.grids)
    with pytest.raises(ValueError, match="unknown scale"):
        write_demo(tmp_path, "mars")


def test_a_small_generated_city_imports_and_routes(rt, tmp_path: Path) -> None:
    from app.importer.files import import_dir
    from app.inbound.placement import place

    city = generate(households=2_000, grids=60)
    write_city(tmp_path, city)
    report = import_dir(rt, tmp_path)
    assert set(report.files) >= {"regions.csv", "residents.csv", "grids.geojson"}
    building = next(p for p in city.places if p.kind == "building")
    x, y = city.shapes[city.grids[5]][0]
    with rt.sessions() as session:
        by_text = place(session, rt, phone="+8613700000099", text=f"{building.text}漏水")
        assert by_text.grid is not None and by_text.grid.code == building.grid
        here = place(
            session, rt, phone="+8613700000099", text="路灯坏了", location=(y + 0.005, x + 0.005)
        )
        assert here.method == "location" and here.grid is not None
        assert here.grid.code == city.grids[5]
