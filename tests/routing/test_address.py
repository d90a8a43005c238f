"""Address normalisation and gazetteer matching."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.address import (
    Entry,
    GazetteerIndex,
    chinese_to_int,
    normalize_address,
    strip_unit_and_room,
)

# ---------------------------------------------------------------- numerals


@pytest.mark.parametrize(
    ("run", "value"),
    [
        ("三", 3),
        ("十", 10),
        ("十一", 11),
        ("二十", 20),
        ("二十一", 21),
        ("一百零五", 105),
        ("一百", 100),
        ("两", 2),
        ("二〇二", 202),
        ("四〇二", 402),
        ("一千零一", 1001),
        ("三十五", 35),
    ],
)
def test_chinese_to_int(run: str, value: int) -> None:
    assert chinese_to_int(run) == value


def test_chinese_to_int_rejects_non_numerals() -> None:
    assert chinese_to_int("") is None
    assert chinese_to_int("三a") is None


# ---------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("翁山新村３幢", "翁山新村3幢"),  # full-width digits
        ("ＡＢＣ小区１号楼", "abc小区1幢"),  # full-width letters, lower-cased
        ("翁山新村三幢", "翁山新村3幢"),
        ("翁山新村三栋", "翁山新村3幢"),  # numeral before 栋
        ("翁山新村十一号楼", "翁山新村11幢"),
        ("翁山新村二十座", "翁山新村20幢"),
        ("人民路一百零五号", "人民路105号"),
        ("第一村", "1村"),
        ("第十一幢", "11幢"),
        ("第一人民医院", "1人民医院"),  # an ordinal is always a number
        ("3栋", "3幢"),
        ("3号楼", "3幢"),
        ("3号幢", "3幢"),
        ("3座", "3幢"),
        ("翁山新村 3 幢", "翁山新村3幢"),
        ("翁山新村 3号 楼", "翁山新村3幢"),  # spaces inside the building word
        ("翁山新村，3幢。", "翁山新村3幢"),
        ("(翁山)新村—3幢", "翁山新村3幢"),
        ("十字路口", "十字路口"),  # 十 not before a numbered word
        ("一品小区", "一品小区"),
        ("万达广场A座", "万达广场a座"),  # a lettered building is not a number
    ],
)
def test_normalize_address(text: str, normalized: str) -> None:
    assert normalize_address(text) == normalized


def test_spellings_of_one_building_normalise_alike() -> None:
    spellings = [
        "翁山新村3幢",
        "翁山新村３号楼",
        "翁山新村三栋",
        "翁山新村第三幢",
        "翁山新村 3 座",
        "翁山新村三号楼",
    ]
    assert {normalize_address(s) for s in spellings} == {"翁山新村3幢"}


@pytest.mark.parametrize(
    ("text", "stripped"),
    [
        ("人民路105号3单元402室", "人民路105号"),
        ("翁山新村3幢2单元", "翁山新村3幢"),
        ("翁山新村三幢二单元四〇二室", "翁山新村3幢"),
        ("人民路3号5楼", "人民路3号"),
        ("人民路3号5层", "人民路3号"),
        ("翁山新村3号楼", "翁山新村3幢"),
    ],
)
def test_unit_and_room_are_ignored_for_matching(text: str, stripped: str) -> None:
    assert strip_unit_and_room(normalize_address(text)) == stripped


@settings(max_examples=300)
@given(st.text())
def test_normalisation_is_idempotent_and_never_raises(text: str) -> None:
    once = normalize_address(text)
    assert normalize_address(once) == once


_address_like = st.text(
    alphabet=st.sampled_from(
        list(
            "翁山新村人民路第零〇一二两三四五六七八九十百千幢栋座号楼单元室层区村 　"
            "-—,，.。()（）0123456789０１２３ＡaB·\u0301e"
        )
    ),
    max_size=24,
)


@settings(max_examples=500)
@given(_address_like)
def test_normalisation_is_idempotent_on_address_like_text(text: str) -> None:
    once = normalize_address(text)
    assert normalize_address(once) == once


# ---------------------------------------------------------------- the gazetteer


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


def test_longest_entry_wins() -> None:
    index = GazetteerIndex.build([entry("翁山新村", "DH-01"), entry("翁山新村3幢", "DH-02")])
    match = index.match("翁山新村三号楼2单元门口的路灯坏了")
    assert match.grid == "DH-02"
    assert match.entry == "翁山新村3幢"
    assert not match.ambiguous
    # Another building of the estate falls back to the estate's entry.
    assert index.match("翁山新村5幢漏水").grid == "DH-01"


def test_no_entry_in_the_text() -> None:
    index = GazetteerIndex.build([entry("翁山新村", "DH-01")])
    match = index.match("路灯坏了")
    assert match.grid is None
    assert match.candidates == ()
    assert not match.ambiguous


def test_empty_index_and_empty_text() -> None:
    assert GazetteerIndex.build([]).match("翁山新村").grid is None
    assert GazetteerIndex.build([entry("翁山新村", "DH-01")]).match("").grid is None


def test_numbers_are_not_matched_inside_longer_numbers() -> None:
    index = GazetteerIndex.build(
        [entry("人民路12号", "DH-01"), entry("人民路", "DH-09"), entry("环城路1", "DH-05")]
    )
    assert index.match("人民路12号").grid == "DH-01"
    # 112号 is not 12号, and 12 is not 123: the road's own entry answers.
    assert index.match("人民路112号").grid == "DH-09"
    assert index.match("人民路123号").grid == "DH-09"
    assert index.match("环城路15号").grid is None


_TOWN_A = ("DH-A-01", "COMM-A", "TOWN-A", "DH")
_TOWN_B = ("DH-B-01", "COMM-B", "TOWN-B", "DH")
_OTHER_COUNTY = ("PT-C-01", "COMM-C", "TOWN-C", "PT")


def _two_renmin_roads() -> GazetteerIndex:
    return GazetteerIndex.build(
        [
            entry("人民路", "DH-A-01", area=_TOWN_A, names=("解放街道", "定海区")),
            entry("人民路", "PT-C-01", area=_OTHER_COUNTY, names=("沈家门街道", "普陀区")),
        ]
    )


def test_same_text_in_two_grids_is_ambiguous_with_candidates() -> None:
    match = _two_renmin_roads().match("人民路上的下水道堵了")
    assert match.grid is None
    assert match.ambiguous
    assert sorted(c.grid for c in match.candidates) == ["DH-A-01", "PT-C-01"]


def test_tie_broken_by_home_area() -> None:
    index = _two_renmin_roads()
    assert index.match("人民路下水道堵了", home_area=_TOWN_A).grid == "DH-A-01"
    assert index.match("人民路下水道堵了", home_area=_OTHER_COUNTY).grid == "PT-C-01"
    assert index.match("人民路下水道堵了", home_area=("PT",)).grid == "PT-C-01"
    # A home elsewhere says nothing.
    assert index.match("人民路下水道堵了", home_area=("XX",)).ambiguous


def test_tie_broken_by_the_area_named_in_the_text() -> None:
    index = _two_renmin_roads()
    match = index.match("普陀区人民路下水道堵了")
    assert match.grid == "PT-C-01"
    assert "names" in match.reason
    assert index.match("定海区人民路下水道堵了").grid == "DH-A-01"


def test_the_named_area_beats_the_home_area() -> None:
    # A resident of 定海 reporting a problem in 普陀 means 普陀's road.
    match = _two_renmin_roads().match("普陀区人民路下水道堵了", home_area=_TOWN_A)
    assert match.grid == "PT-C-01"


def test_home_area_prefers_the_nearest_candidate() -> None:
    # Two towns of one county both have a 人民路: sharing the county is not enough.
    index = GazetteerIndex.build(
        [
            entry("人民路", "DH-A-01", area=_TOWN_A, names=("解放街道", "定海区")),
            entry("人民路", "DH-B-01", area=_TOWN_B, names=("白泉镇", "定海区")),
        ]
    )
    assert index.match("人民路", home_area=("DH-B-07", "COMM-B2", "TOWN-B", "DH")).grid == "DH-B-01"
    assert index.match("人民路", home_area=("DH",)).ambiguous
    # Naming the county does not tell two of its towns apart; naming the town does.
    assert index.match("定海区人民路").ambiguous
    assert index.match("定海区白泉镇人民路").grid == "DH-B-01"


def test_equal_length_entries_of_different_texts_are_reported_together() -> None:
    index = GazetteerIndex.build([entry("人民路", "DH-01"), entry("解放路", "DH-02")])
    match = index.match("从人民路走到解放路")
    assert match.ambiguous
    assert {c.grid for c in match.candidates} == {"DH-01", "DH-02"}


def test_duplicate_entries_of_one_grid_are_not_ambiguous() -> None:
    index = GazetteerIndex.build([entry("人民路", "DH-01"), entry("人民路", "DH-01")])
    match = index.match("人民路")
    assert match.grid == "DH-01"
    assert len(index) == 2


def test_entries_with_empty_normalised_text_are_ignored() -> None:
    index = GazetteerIndex.build([Entry(text="——", normalized="", grid="DH-01")])
    assert len(index) == 0
    assert index.match("——").grid is None
