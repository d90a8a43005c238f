"""The routing engine in the SMS loop: questions, digit answers, precedence, locations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from app.db import unit_of_work
from app.errors import ImportFailed
from app.importer.files import import_dir
from app.intake.store import InboundSms, store
from app.models.cases import Case
from app.models.directory import GridShape, Resident
from app.worker.loop import run_once
from tests.factories import RESIDENT, STRANGER, WORKER_A, WORKER_C, make_address, make_city
from tests.helpers import Phone, latest_case, new_sid

# Two squares side by side (longitude 122.10-122.11 and 122.11-122.12, latitude 30.00-30.01).
SQUARE_1 = [[122.10, 30.00], [122.11, 30.00], [122.11, 30.01], [122.10, 30.01], [122.10, 30.00]]
SQUARE_2 = [[122.11, 30.00], [122.12, 30.00], [122.12, 30.01], [122.11, 30.01], [122.11, 30.00]]
IN_GRID_2 = {"Latitude": "30.005", "Longitude": "122.115"}
AT_SEA = {"Latitude": "29.9", "Longitude": "122.5"}


def geojson(*features: tuple[str, list[list[float]]]) -> str:
    return json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"code": code},
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
                for code, ring in features
            ],
        }
    )


@pytest.fixture
def city(rt):
    with unit_of_work(rt.sessions) as session:
        c = make_city(session)
        # One village spread over both grids: a place to ask about.
        make_address(session, address="西码头村大岙", grid=c.grid1)
        make_address(session, address="西码头村小岙", grid=c.grid2)
    return c


@pytest.fixture
def shapes(rt, city, tmp_path: Path):
    (tmp_path / "grids.geojson").write_text(
        geojson(("DH-01", SQUARE_1), ("DH-02", SQUARE_2)), encoding="utf-8"
    )
    report = import_dir(rt, tmp_path)
    assert str(report.files["grids.geojson"]) == "2 inserted, 0 updated, 0 unchanged"


def text(rt, gateway, phone: str, body: str, params: dict[str, str] | None = None) -> None:
    with unit_of_work(rt.sessions) as session:
        store(
            session,
            InboundSms(
                message_sid=new_sid(),
                from_phone=phone,
                to_phone=None,
                body=body,
                params=params or {},
                received_at=rt.clock(),
            ),
        )
    run_once(rt, gateway)


def case_of(rt) -> Case:
    with rt.sessions() as s:
        return latest_case(s)


def test_ambiguous_place_asks_with_numbered_candidates_and_the_digit_routes(rt, gateway, city):
    stranger = Phone(rt, gateway, STRANGER)
    stranger.text("西码头村路灯坏了")
    case = case_of(rt)
    assert case.status == "awaiting_address" and case.grid is None
    assert stranger.last() == "请问您说的是哪一处？回复1 西码头村大岙；回复2 西码头村小岙"
    assert [o["grid"] for o in case.routing_evidence["offered"]] == ["DH-01", "DH-02"]
    assert gateway.to(WORKER_A) == [] and gateway.to(WORKER_C) == []

    stranger.text("2")
    case = case_of(rt)
    assert case.status == "open" and case.grid.code == "DH-02"
    assert case.routing_evidence["how"] == "choice"
    assert "西码头村小岙" in case.routing_evidence["reason"]
    assert "路灯坏了" in gateway.to(WORKER_C)[-1]
    with rt.sessions() as s:
        resident = s.scalar(select(Resident).where(Resident.phone == STRANGER))
        assert resident.address == "西码头村小岙" and resident.address_source == "sms"
        assert resident.address_confirmed_at == rt.clock()


def test_a_confirmed_address_is_remembered_for_the_next_text(rt, gateway, city, clock):
    stranger = Phone(rt, gateway, STRANGER)
    stranger.text("西码头村路灯坏了")
    stranger.text("回复1")
    first = case_of(rt)
    assert first.grid.code == "DH-01"
    Phone(rt, gateway, WORKER_A).text(f"{first.code} 办结 已修")
    stranger.text("1")
    clock.advance(days=1)
    stranger.text("水管漏水")  # no address: the remembered home answers at once
    case = case_of(rt)
    assert case.id != first.id and case.status == "open" and case.grid.code == "DH-01"
    assert case.routing_method == "registered" and case.routing_evidence["source"] == "sms"


def test_a_digit_out_of_range_or_nonsense_asks_again(rt, gateway, city):
    stranger = Phone(rt, gateway, STRANGER)
    stranger.text("西码头村路灯坏了")
    stranger.text("7")
    assert case_of(rt).status == "awaiting_address"
    assert "未能识别" in stranger.last()
    stranger.text("1")  # the offer still stands
    assert case_of(rt).grid.code == "DH-01"


def test_the_answer_may_name_only_the_missing_part(rt, gateway, city):
    stranger = Phone(rt, gateway, STRANGER)
    stranger.text("西码头村路灯坏了")
    stranger.text("小岙")
    assert case_of(rt).grid.code == "DH-02"


def test_an_address_in_the_text_beats_the_registered_home(rt, gateway, city):
    Phone(rt, gateway, RESIDENT).text("人民路12号门口垃圾没人清")
    case = case_of(rt)
    assert case.grid.code == "DH-02" and case.routing_method == "address"
    assert case.routing_evidence["won"] == "address"
    assert case.routing_evidence["entry"] == "人民路12号"
    assert case.routing_evidence["confidence"] == 1.0


def test_an_ambiguous_place_that_includes_the_home_grid_goes_home(rt, gateway, city):
    Phone(rt, gateway, RESIDENT).text("西码头村路灯坏了")
    case = case_of(rt)
    assert case.status == "open" and case.grid.code == "DH-01"


def test_a_location_places_a_stranger_and_beats_the_registered_home(rt, gateway, shapes):
    text(rt, gateway, STRANGER, "路灯不亮", IN_GRID_2)
    case = case_of(rt)
    assert case.grid.code == "DH-02" and case.routing_method == "location"
    assert case.routing_evidence["won"] == "location"
    text(rt, gateway, RESIDENT, "这里路灯不亮", IN_GRID_2)
    case = case_of(rt)
    assert case.grid.code == "DH-02" and case.routing_method == "location"


def test_an_address_beats_a_location(rt, gateway, shapes):
    text(rt, gateway, STRANGER, "翁山新村3幢漏水", IN_GRID_2)
    case = case_of(rt)
    assert case.grid.code == "DH-01" and case.routing_method == "address"


def test_a_location_outside_every_grid_asks(rt, gateway, shapes):
    text(rt, gateway, STRANGER, "路灯不亮", AT_SEA)
    case = case_of(rt)
    assert case.status == "awaiting_address"
    assert case.routing_evidence["location"]["reason"] == "outside every grid"


def test_a_location_shared_without_words_answers_the_address_question(rt, gateway, shapes):
    text(rt, gateway, STRANGER, "路灯不亮")
    assert case_of(rt).status == "awaiting_address"
    text(rt, gateway, STRANGER, "", IN_GRID_2)
    case = case_of(rt)
    assert case.status == "open" and case.grid.code == "DH-02"
    assert case.summary == "路灯不亮"


def test_grids_geojson_errors_name_the_feature_and_write_nothing(rt, city, tmp_path: Path):
    bad = json.loads(geojson(("DH-01", SQUARE_1), ("NOPE", SQUARE_2), ("DH-JF", SQUARE_2)))
    bad["features"].append({"type": "Feature", "properties": {"code": "DH-02"}, "geometry": None})
    (tmp_path / "grids.geojson").write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(ImportFailed) as failed:
        import_dir(rt, tmp_path)
    assert failed.value.errors == [
        "grids.geojson:feature 4: DH-02: geometry type None is not Polygon or MultiPolygon",
        "grids.geojson:feature 2: unknown grid code 'NOPE'",
        "grids.geojson:feature 3: 'DH-JF' is a town, not a grid",
    ]
    with rt.sessions() as s:
        assert s.scalars(select(GridShape)).all() == []


def test_grids_geojson_reimport_updates_in_place(rt, city, tmp_path: Path):
    path = tmp_path / "grids.geojson"
    path.write_text(geojson(("DH-01", SQUARE_1)), encoding="utf-8")
    import_dir(rt, tmp_path)
    path.write_text(geojson(("DH-01", SQUARE_2), ("DH-02", SQUARE_1)), encoding="utf-8")
    report = import_dir(rt, tmp_path)
    assert str(report.files["grids.geojson"]) == "1 inserted, 1 updated, 0 unchanged"
