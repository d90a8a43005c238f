"""Phone numbers: any common format to E.164; masking for logs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms.phones import (
    InvalidPhone,
    mask_phone,
    mask_phones_in_text,
    normalize_phone,
    same_number,
)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("13800138000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("+8613800138000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("１３８００１３８０００", "+8613800138000"),  # full-width digits
        ("＋８６ １３８ ００１３ ８０００", "+8613800138000"),
        ("008613800138000", "+8613800138000"),  # international prefix 00
        ("0086 138 0013 8000", "+8613800138000"),
        (" 13800138000\n", "+8613800138000"),
        ("0580-2021234", "+865802021234"),  # Zhoushan landline
        ("(0580) 2021234", "+865802021234"),
        ("+86-580-2021234", "+865802021234"),
        ("+1 415 555 0100", "+14155550100"),
    ],
)
def test_normalize_phone(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


def test_normalize_phone_is_idempotent() -> None:
    assert normalize_phone(normalize_phone("0580-2021234")) == "+865802021234"


def test_region_decides_national_numbers() -> None:
    assert normalize_phone("(415) 555-0100", region="US") == "+14155550100"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "abc",
        "12345",
        "4821",
        "138001380001",
        "1380013800",
        "+86 12345678",
        "00",
        "+",
        "+0 123",
        "2024年5月6日",
        "１２３",
    ],
)
def test_invalid_phone(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


def test_none_is_invalid() -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(None)  # type: ignore[arg-type]


@given(st.text())
def test_normalize_phone_raises_only_invalid_phone(raw: str) -> None:
    try:
        result = normalize_phone(raw)
    except InvalidPhone:
        return
    assert result.startswith("+")
    assert result[1:].isdigit()


# ---------------------------------------------------------------- masking


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+8613800138000", "138****8000"),
        ("13800138000", "138****8000"),
        ("+86 138 0013 8000", "138****8000"),
        ("138-0013-8000", "138****8000"),
        ("+865802021234", "580****1234"),
        ("+14155550100", "415****0100"),
        ("１３８００１３８０００", "138****8000"),
        ("1234567", "1****67"),
        ("4821", "****"),
        ("", ""),
    ],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_mask_phone_tolerates_none() -> None:
    assert mask_phone(None) == ""  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("inbound from +8613800138000: #4821 收到", "inbound from 138****8000: #4821 收到"),
        ("call 0580-2021234 or 13800138000", "call 058****1234 or 138****8000"),
        ("phones +86 138 0013 8000 and 138-0013-8000.", "phones 138****8000 and 138****8000."),
        ("+8613800138000,+8613900139000", "138****8000,139****9000"),
        ("to=+8613800138000 sid=SM123", "to=138****8000 sid=SM123"),
        # Chinese text runs straight into the number.
        ("居民电话13800138000，请回电", "居民电话138****8000，请回电"),
        ("电话１３８００１３８０００", "电话138****8000"),
        # A form-encoded "+" (%2B) in a logged request body.
        ("From=%2B8613800138000&Body=hi", "From=138****8000&Body=hi"),
        ("#4821 13800138000", "#4821 138****8000"),
    ],
)
def test_mask_phones_in_text(line: str, masked: str) -> None:
    assert mask_phones_in_text(line) == masked


@pytest.mark.parametrize(
    "line",
    [
        "#4821 收到",
        "case 4821 opened",
        "code #482100 claimed",
        "2024年的事",
        "in 2024 and 2025",
        "2024-05-06 12:00:00,123 INFO worker started",
        "at 2024-05-06T04:00:00Z",
        "retry 3 of 5",
        "sid SM1234567890abcdef",
        "took 123456 ms",
        "",
    ],
)
def test_short_numbers_and_dates_are_left_alone(line: str) -> None:
    assert mask_phones_in_text(line) == line


def test_timestamp_then_phone() -> None:
    line = "2024-05-06T12:00:00+08:00 13800138000 sent"
    assert mask_phones_in_text(line) == "2024-05-06T12:00:00+08:00 138****8000 sent"


_phones = st.sampled_from(
    [
        "13800138000",
        "+8613800138000",
        "+86 138 0013 8000",
        "0580-2021234",
        "%2B8613800138000",
        "138-0013-8000",
    ]
)
_filler = st.text(alphabet=st.sampled_from(list("收到路灯 ,.:=#abc()，。")), max_size=6)


@given(st.lists(st.tuples(_filler, _phones), min_size=1, max_size=4), _filler)
def test_no_phone_survives_masking(parts: list[tuple[str, str]], tail: str) -> None:
    line = "".join(f"{before} {phone} " for before, phone in parts) + tail
    masked = mask_phones_in_text(line)
    for _, phone in parts:
        assert phone not in masked
    assert "13800138000" not in masked.replace(" ", "").replace("-", "")
    assert "2021234" not in masked


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("+865802021234", "0580-2021234", True),
        ("+86 138 0013 8000", "13800138000", True),
        ("+8613800138000", "+8613800138001", False),
        ("12345", "１２３４５", True),  # a service number: by its digits
        ("12345", "12346", False),
        ("", "", False),
        ("+8657000000000", "0086 570 0000 0000", True),
    ],
)
def test_same_number(a: str, b: str, same: bool) -> None:
    assert same_number(a, b) is same
