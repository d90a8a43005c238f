"""sms/parts.py: a text longer than the provider takes, cut into numbered parts."""

from __future__ import annotations

import pytest

from sms.parts import split


def test_a_text_that_fits_is_left_alone() -> None:
    assert split("楼道灯坏了", 10) == ["楼道灯坏了"]
    assert split("x" * 1600, 1600) == ["x" * 1600]


@pytest.mark.parametrize("length", [1601, 1700, 3199, 3200, 5000, 16_000])
@pytest.mark.parametrize("limit", [1600, 500, 70])
def test_every_part_fits_and_the_parts_give_the_text_back(length: int, limit: int) -> None:
    body = ("楼道灯坏了，三楼的也不亮。请尽快来修！" * 1000)[:length]
    parts = split(body, limit)
    assert len(parts) >= 2
    assert all(len(p) <= limit for p in parts)
    total = len(parts)
    pieces = []
    for n, part in enumerate(parts, 1):
        marker = f"（{n}/{total}）"
        assert part.startswith(marker)
        pieces.append(part[len(marker) :])
    assert "".join(pieces) == body


def test_a_cut_falls_after_a_sentence_end_near_the_limit() -> None:
    body = "甲" * 80 + "。" + "乙" * 30
    first, second = split(body, 100)
    assert first == "（1/2）" + "甲" * 80 + "。"
    assert second == "（2/2）" + "乙" * 30


def test_without_a_break_near_the_limit_the_cut_is_at_the_limit() -> None:
    body = "甲。" + "乙" * 200
    parts = split(body, 100)
    assert len(parts[0]) == 100 and parts[0].startswith("（1/3）甲。乙")


def test_the_marker_width_grows_with_the_count() -> None:
    parts = split("字" * 1000, 20)  # (n/NN) markers: the count reaches two digits
    assert all(len(p) <= 20 for p in parts)
    assert parts[-1].startswith(f"（{len(parts)}/{len(parts)}）")
    assert len(parts) >= 10


def test_an_english_marker() -> None:
    parts = split("word " * 100, 100, marker="({n}/{total}) ")
    assert parts[0].startswith("(1/") and all(len(p) <= 100 for p in parts)


def test_a_limit_without_room_is_refused() -> None:
    with pytest.raises(ValueError):
        split("x" * 10, 3)
