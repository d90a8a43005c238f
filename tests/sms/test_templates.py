"""SMS texts: both locales complete, Chinese texts inside one 70-character segment."""

from __future__ import annotations

import pytest

from sms.templates import LOCALES, TEMPLATES, WORDS, UnknownTemplate, placeholders, render, word

# One UCS-2 SMS segment holds 70 characters.
SEGMENT = 70
# Parts the user writes: their length is theirs, not the template's.
USER_TEXT = {"text", "note"}
# Short stand-ins for the values the app fills in.
SAMPLE = {
    "code": "4821",
    "team": "翁山网格服务团队",
    "who": "居民138****8000",
    "name": "王芳",
    "level": "县（区）",
    "reason": "需执法",
    "grid": "DH-JF-WS-03",
    "status": "处理中",
    "outcome": "发送失败",
    "action": "签收",
    "codes": "#4821 #4822 #4823",
    "items": "#4821 处理中 路灯坏了",
    "day": "2026-11-25",
    "count": "12",
    "due": "11-28 10:00",
    "choices": "回复1 翁山新村1-3幢；回复2 翁山新村4-6幢；回复3 海山公寓",
    "place": "翁山新村",
    "part": "所在镇（街道）和门牌号",
    "example": "翁山新村3幢",
    "unit": "解放街道",
}


def test_both_locales_exist() -> None:
    assert set(LOCALES) == {"zh", "en"}
    assert set(TEMPLATES) == set(LOCALES)
    assert set(WORDS) == set(LOCALES)


def test_every_template_exists_in_both_locales() -> None:
    assert set(TEMPLATES["zh"]) == set(TEMPLATES["en"])


@pytest.mark.parametrize("name", sorted(TEMPLATES["zh"]))
def test_placeholders_are_the_same_in_both_locales(name: str) -> None:
    assert placeholders(name, "zh") == placeholders(name, "en")


@pytest.mark.parametrize("name", sorted(TEMPLATES["zh"]))
def test_every_placeholder_has_a_sample(name: str) -> None:
    # A new placeholder must be added to SAMPLE (or USER_TEXT) so its length is checked.
    assert placeholders(name) <= set(SAMPLE) | USER_TEXT


@pytest.mark.parametrize("name", sorted(TEMPLATES["zh"]))
@pytest.mark.parametrize("code", ["", "4821", "123456"])
def test_fixed_part_of_chinese_text_fits_one_segment(name: str, code: str) -> None:
    params = {p: "" if p in USER_TEXT else SAMPLE[p] for p in placeholders(name)}
    if "code" in params:
        params["code"] = code
    text = render(name, "zh", **params)
    assert len(text) <= SEGMENT, f"{name}: {len(text)} characters: {text}"


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", sorted(TEMPLATES["zh"]))
def test_every_template_renders(name: str, locale: str) -> None:
    params = {p: f"<{p}>" for p in placeholders(name, locale)}
    text = render(name, locale, **params)
    for value in params.values():
        assert value in text
    assert "{" not in text and "}" not in text


def test_render_fills_placeholders() -> None:
    assert render("ack_append", "zh", code="4821") == "已补充到您的诉求#4821。"
    assert render("ack_append", "en", code="4821") == "Added to your request #4821."


def test_render_falls_back_to_chinese_for_an_unknown_locale() -> None:
    assert render("ack_append", "fr", code="4821") == render("ack_append", "zh", code="4821")


def test_unknown_template() -> None:
    with pytest.raises(UnknownTemplate):
        render("no_such_template", "zh")


def test_missing_parameter_raises() -> None:
    with pytest.raises(KeyError):
        render("ack_append", "zh")


def test_claim_hint_in_forwards_is_a_command_the_grammar_reads() -> None:
    from routing.grammar import Action, parse_worker

    for locale, hint in (("zh", "4821 收到"), ("en", "4821 ok")):
        text = render("forward", locale, code="4821", who="x", text="y")
        assert hint in text
        assert parse_worker(hint).action is Action.CLAIM


# ---------------------------------------------------------------- words


def test_every_word_exists_in_both_locales() -> None:
    assert set(WORDS["zh"]) == set(WORDS["en"])


def test_words_the_app_looks_up_exist() -> None:
    for locale in LOCALES:
        for level in ("grid", "town", "county", "city"):
            assert word(f"level.{level}", locale)
        for status in ("awaiting_address", "open", "claimed", "resolved", "closed"):
            assert word(f"status.{status}", locale)
        for action in ("claim", "resolve", "escalate", "transfer", "relay"):
            assert word(f"action.{action}", locale)
        for key in ("no_reason", "office", "sep"):
            assert word(key, locale)


def test_word_fills_placeholders() -> None:
    assert word("team", "zh", grid="翁山网格") == "翁山网格服务团队"
    assert word("team", "en", grid="Wengshan") == "Wengshan team"
    assert word("resident", "zh", phone="138****8000") == "居民138****8000"


@pytest.mark.parametrize("key", sorted(WORDS["zh"]))
def test_word_placeholders_are_the_same_in_both_locales(key: str) -> None:
    from string import Formatter

    def fields(text: str) -> set[str]:
        return {f for _, f, _, _ in Formatter().parse(text) if f}

    assert fields(WORDS["zh"][key]) == fields(WORDS["en"][key])
