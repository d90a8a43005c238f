"""The routing engine's gazetteer: prefix closure, road fallback, fuzzy, decisions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from routing.address import Entry, normalize_address
from routing.gazetteer import ROUTE_AT, Gazetteer, sound


def entry(
    text: str, grid: str, *, area: tuple[str, ...] = (), names: tuple[str, ...] = ()
) -> Entry:
    return Entry(
        text=text,
        normalized=normalize_address(text),
        grid=grid,
        area=area,
        area_names=tuple(normalize_address(n) for n in names),
    )


def city() -> Gazetteer:
    rows = {
        "WS-01": ("翁山新村1幢", "翁山新村2幢", "翁山新村3幢"),
        "WS-02": ("翁山新村4幢", "翁山新村5幢", "翁山新村6幢", "海山公寓"),
        "XD-01": ("人民路10号", "人民路12号", "人民路14号"),
        "XD-02": ("西大街8号", "西大街10号", "环城南路"),
        "XD-03": ("环城南路20号",),
        "XMT-01": ("西码头村大岙", "西码头村后岙"),
        "XMT-02": ("西码头村小岙", "西码头村前岙"),
        "XJ-01": ("新建村樟州", "新建村南洞"),
    }
    return Gazetteer.build(entry(t, grid) for grid, texts in rows.items() for t in texts)


def test_exact_entry_routes_with_full_confidence() -> None:
    d = city().decide("翁山新村三号楼2单元402室门口的路灯坏了")
    assert d.action == "route" and d.grid == "WS-01"
    assert d.how == "exact" and d.confidence == 1.0 and d.entry == "翁山新村3幢"
    assert "翁山新村3幢" in d.reason and "WS-01" in d.reason


def test_building_without_its_word_routes_by_number() -> None:
    d = city().decide("翁山新村5 漏水")
    assert d.grid == "WS-02" and d.how == "number"


def test_prefix_closure_one_grid_routes() -> None:
    d = city().decide("人民路上的下水道堵了")
    assert d.action == "route" and d.grid == "XD-01" and d.how == "closure"
    # A village whose natural villages are all in one grid.
    assert city().decide("新建村的桥坏了").grid == "XJ-01"


def test_prefix_spread_over_grids_asks_with_numbered_candidates() -> None:
    d = city().decide("翁山新村路灯坏了")
    assert d.action == "ask" and d.grid is None
    assert [(c.grid, c.label) for c in d.candidates] == [
        ("WS-01", "翁山新村1-3幢"),
        ("WS-02", "翁山新村4-6幢"),
    ]
    village = city().decide("西码头村的路坏了")
    assert village.action == "ask"
    assert {c.grid for c in village.candidates} == {"XMT-01", "XMT-02"}


def test_unlisted_building_of_a_spread_estate_is_asked_not_guessed() -> None:
    d = city().decide("翁山新村9幢")
    assert d.action == "ask" and len(d.candidates) == 2


def test_unlisted_road_number_falls_back_to_the_road_entry() -> None:
    g = city()
    assert g.decide("环城南路20号").grid == "XD-03"
    d = g.decide("环城南路88号")
    assert d.grid == "XD-02" and d.how == "road" and d.confidence >= ROUTE_AT


def test_one_character_typo_or_homophone_is_matched_fuzzily() -> None:
    g = city()
    d = g.decide("翁三新村3幢漏水")  # 三 for 山
    assert d.action == "route" and d.grid == "WS-01" and d.how == "fuzzy"
    assert d.score is not None and d.score < 100
    assert d.evidence()["score"] == 75.0  # rapidfuzz ratio of 翁三新村 to 翁山新村
    assert g.decide("西码头大岙停电").grid == "XMT-01"  # a missing character
    assert g.decide("海三公寓停电").grid == "WS-02"  # 三 sounds like 山 here


def test_a_substitution_that_is_no_homophone_is_asked_about() -> None:
    d = city().decide("海天公寓3幢停电")  # 天 is not 山: a new estate, or a typo?
    assert d.action == "ask" and [c.grid for c in d.candidates] == ["WS-02"]
    assert d.confidence < ROUTE_AT


def test_a_short_name_less_one_character_is_not_guessed() -> None:
    assert city().decide("山新村3幢").action == "none"  # 翁山新村 less 翁: too little left


def test_homophones_as_the_local_accent_hears_them() -> None:
    assert sound("山") == sound("三") and sound("民") == sound("明")
    assert sound("山") != sound("天") and sound("a") == ""


def test_fuzzy_match_of_a_spread_estate_without_number_asks() -> None:
    d = city().decide("翁三新村停水了")
    assert d.action == "ask" and d.how == "fuzzy"


def test_nothing_known_is_none() -> None:
    d = city().decide("楼道灯坏了")
    assert d.action == "none" and d.candidates == ()


def test_many_grids_ask_for_the_missing_part() -> None:
    g = Gazetteer.build(entry(f"金鸡山小区{n}幢", f"G{n}") for n in range(1, 7))
    d = g.decide("金鸡山小区停电")
    assert d.action == "ask" and d.missing == "building"
    assert g.decide("金鸡山小区4幢停电").grid == "G4"


_A = ("A-01", "COMM-A", "TOWN-A", "DH")
_B = ("B-01", "COMM-B", "TOWN-B", "PT")


def _two_roads() -> Gazetteer:
    return Gazetteer.build(
        [
            entry("人民路5号", "A-01", area=_A, names=("解放街道", "定海区")),
            entry("人民路5号", "B-01", area=_B, names=("沈家门街道", "普陀区")),
        ]
    )


def test_same_name_in_two_areas_is_told_apart_by_the_text_then_by_home() -> None:
    g = _two_roads()
    assert g.decide("人民路5号").action == "ask"
    named = g.decide("普陀区人民路5号", home_area=_A)
    assert named.grid == "B-01" and named.how == "area"
    home = g.decide("人民路5号", home_area=_A)
    assert home.grid == "A-01" and home.how == "home"


def test_evidence_is_json_ready() -> None:
    evidence = city().decide("翁山新村路灯坏了").evidence()
    assert evidence["candidates"][0] == {"grid": "WS-01", "label": "翁山新村1-3幢"}
    assert evidence["how"] == "stem" and evidence["key"] == "翁山新村"


def test_match_keeps_the_first_version_shape() -> None:
    g = city()
    assert g.match("人民路12号").grid == "XD-01"
    assert g.match("翁山新村").ambiguous
    assert g.match("路灯坏了").grid is None


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("翁山新村三号楼人民路12幢西码头大岙 ,。")), max_size=30)
)
def test_no_text_raises_and_routes_are_confident(text: str) -> None:
    d = city().decide(text)
    assert d.action in ("route", "ask", "none")
    if d.action == "route":
        assert d.grid is not None and d.confidence >= ROUTE_AT
    else:
        assert d.grid is None


def test_two_places_of_different_grids_in_one_text_ask() -> None:
    d = city().decide("从翁山新村3幢到人民路12号的路灯都坏了")
    assert d.action == "ask"
    assert {c.grid for c in d.candidates} == {"WS-01", "XD-01"}
    # Two places of one grid are one answer.
    assert city().decide("翁山新村1幢和翁山新村3幢之间").grid == "WS-01"


def test_a_building_a_few_words_after_the_estate() -> None:
    assert city().decide("我家在翁山新村那边，5号楼停电").grid == "WS-02"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_no_text_at_all_raises(text: str) -> None:
    assert city().decide(text).action in ("route", "ask", "none")
