"""Placement rules (routing/placement.py), table-driven, no database: which evidence
wins, a digit answer's pick, how an answer to a question is read again."""

from __future__ import annotations

import pytest

from routing.placement import answer_readings, choice_number, winner


@pytest.mark.parametrize(
    ("address", "location", "registered", "expected"),
    [
        ("G1", "G2", "G3", ("address", "G1")),  # the place in the text wins
        ("G1", None, "G3", ("address", "G1")),
        (None, "G2", "G3", ("location", "G2")),  # then where the phone stands
        (None, None, "G3", ("registered", "G3")),  # then home
        (None, "G2", None, ("location", "G2")),
        (None, None, None, None),  # nothing: ask
    ],
)
def test_precedence(
    address: str | None,
    location: str | None,
    registered: str | None,
    expected: tuple[str, str] | None,
) -> None:
    assert winner(address=address, location=location, registered=registered) == expected


@pytest.mark.parametrize(
    ("answer", "offered", "number"),
    [
        ("1", 3, 1),
        ("回复2", 3, 2),
        ("选3", 3, 3),
        ("第2个", 3, 2),
        (" 2号 ", 3, 2),
        ("4", 3, None),  # out of range
        ("0", 3, None),
        ("1", 0, None),  # nothing was offered
        ("12", 3, None),
        ("1幢", 3, None),  # a building, not a pick
        ("人民路1号", 3, None),
    ],
)
def test_a_digit_answer_picks_an_offered_candidate(
    answer: str, offered: int, number: int | None
) -> None:
    assert choice_number(answer, offered) == number


@pytest.mark.parametrize(
    ("answer", "key", "first", "readings"),
    [
        ("3幢", "翁山新村", "楼道灯坏了", ["翁山新村3幢", "楼道灯坏了 3幢"]),
        ("3幢", None, "翁山新村楼道灯坏了", ["翁山新村楼道灯坏了 3幢"]),
    ],
)
def test_an_answer_is_read_after_the_question_then_after_the_first_text(
    answer: str, key: str | None, first: str, readings: list[str]
) -> None:
    assert answer_readings(answer, asked_key=key, first_text=first) == readings
