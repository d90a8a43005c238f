"""The SMS reply grammar of DESIGN.md, for team members and residents."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.grammar import (
    Action,
    ResidentIntent,
    WorkerCommand,
    is_opt_out,
    looks_automatic,
    normalize_text,
    parse_resident,
    parse_worker,
)


def cmd(action: Action, code: str | None = None, *, explicit: bool = False, arg: str = "") -> tuple:
    return (action, code, explicit, arg)


def shape(parsed: WorkerCommand) -> tuple:
    return (parsed.action, parsed.code, parsed.explicit_code, parsed.arg)


# ---------------------------------------------------------------- claim


@pytest.mark.parametrize(
    "text",
    [
        "4821 收到",
        "4821 ok",
        "4821 ack",
        "4821 OK",
        "4821 Ack",
        "4821 CLAIM",
        "4821 签收",
        "4821收到",
        "4821ok",
        "4821：收到",
        "4821, ok.",
        "  4821   收到  ",
        "4821 收到了",
    ],
)
def test_claim_without_hash(text: str) -> None:
    assert shape(parse_worker(text)) == cmd(Action.CLAIM, "4821")


@pytest.mark.parametrize(
    "text",
    ["#4821 收到", "#4821 ok", "#4821收到", "# 4821 收到", "＃４８２１　收到", "＃４８２１ＯＫ"],
)
def test_claim_with_hash_is_explicit(text: str) -> None:
    assert shape(parse_worker(text)) == cmd(Action.CLAIM, "4821", explicit=True)


def test_text_is_kept_as_written_with_whitespace_collapsed() -> None:
    parsed = parse_worker("  ＃４８２１　 收到 ")
    assert parsed.text == "＃４８２１ 收到"


def test_claim_drops_trailing_courtesy() -> None:
    # "收到 谢谢" still claims; the thanks are not relayed.
    assert shape(parse_worker("4821 收到，谢谢")) == cmd(Action.CLAIM, "4821")


def test_english_keyword_may_run_into_chinese() -> None:
    assert shape(parse_worker("4821 ok好的")) == cmd(Action.CLAIM, "4821")
    assert shape(parse_worker("4821 done已修好")) == cmd(Action.RESOLVE, "4821", arg="已修好")


@pytest.mark.parametrize(
    "text",
    [
        "4821 okay",
        "4821 acknowledged",
        "4821 oks",
        "4821 ok2",
        "4821 doneness",
        "4821 escape now",
        "4821 mover",
    ],
)
def test_english_keywords_must_stand_alone(text: str) -> None:
    parsed = parse_worker(text)
    assert parsed.action is Action.RELAY
    assert parsed.code == "4821"
    assert parsed.arg == text.split(" ", 1)[1]


def test_polite_reply_starting_with_claim_word_is_relayed() -> None:
    parsed = parse_worker("4821 好的，马上到")
    assert parsed.action is Action.RELAY
    assert parsed.arg == "好的，马上到"


# ---------------------------------------------------------------- resolve / escalate / transfer


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("4821 办结 已修好", "已修好"),
        ("4821 办结已修好", "已修好"),
        ("4821 办结：已修好", "已修好"),
        ("4821 done fixed the lamp", "fixed the lamp"),
        ("4821 DONE fixed", "fixed"),
        ("4821 已办结 已修好", "已修好"),
        ("4821 办结了，已修好", "已修好"),
        ("4821 办结", ""),
        ("4821 done.", ""),
    ],
)
def test_resolve_with_note(text: str, note: str) -> None:
    assert shape(parse_worker(text)) == cmd(Action.RESOLVE, "4821", arg=note)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("4821 上报 需要执法", "需要执法"),
        ("4821上报需要执法", "需要执法"),
        ("4821 esc need police", "need police"),
        ("4821 ESC need police", "need police"),
        ("4821 escalate", ""),
        ("#4821 上报", ""),
    ],
)
def test_escalate_with_reason(text: str, reason: str) -> None:
    parsed = parse_worker(text)
    assert parsed.action is Action.ESCALATE
    assert parsed.code == "4821"
    assert parsed.arg == reason


@pytest.mark.parametrize(
    ("text", "grid"),
    [
        ("4821 转 DH-02", "DH-02"),
        ("4821 move dh-02", "dh-02"),
        ("4821转DH-02", "DH-02"),
        ("4821 MOVE DH-02", "DH-02"),
        ("4821 转办 DH-JF-WS-03", "DH-JF-WS-03"),
        ("4821 transfer DH-02", "DH-02"),
        ("４８２１　转　ＤＨ－０２", "DH-02"),
        ("4821 转 DH-02 谢谢", "DH-02"),
        ("4821 move DH-02, thanks", "DH-02"),
    ],
)
def test_transfer_to_grid(text: str, grid: str) -> None:
    assert shape(parse_worker(text)) == cmd(Action.TRANSFER, "4821", arg=grid)


@pytest.mark.parametrize(
    "text", ["4821 转告居民明天上午来修", "4821 转达一下：明天停水", "4821 转交给老王"]
)
def test_sentence_starting_with_zhuan_is_relayed_not_transferred(text: str) -> None:
    parsed = parse_worker(text)
    assert parsed.action is Action.RELAY
    assert parsed.arg == text.split(" ", 1)[1]


def test_transfer_without_a_grid_code_still_transfers_for_the_caller_to_refuse() -> None:
    # "转" standing alone is the command; the caller answers "unknown_grid".
    assert shape(parse_worker("4821 转")) == cmd(Action.TRANSFER, "4821")
    assert shape(parse_worker("4821 转 翁山网格")) == cmd(Action.TRANSFER, "4821", arg="翁山网格")


# ---------------------------------------------------------------- relay, list, help


def test_relay_text() -> None:
    parsed = parse_worker("4821 明天上午九点上门维修")
    assert shape(parsed) == cmd(Action.RELAY, "4821", arg="明天上午九点上门维修")


def test_relay_with_hash_keeps_everything_after_the_code() -> None:
    parsed = parse_worker("#4821 路灯已报修，师傅下午到")
    assert shape(parsed) == cmd(Action.RELAY, "4821", explicit=True, arg="路灯已报修，师傅下午到")


def test_relayed_text_keeps_full_width_punctuation_and_digits() -> None:
    # Residents read it: "，" must not turn into ",", nor "！" lose its place.
    parsed = parse_worker("＃４８２１：明天１０点上门，请在家！")
    assert parsed.code == "4821"
    assert parsed.arg == "明天１０点上门，请在家！"


def test_note_and_reason_lose_surrounding_punctuation_only() -> None:
    assert parse_worker("4821 办结：已修好，谢谢配合。").arg == "已修好，谢谢配合"
    assert parse_worker("4821 上报！需要执法！").arg == "需要执法"


def test_code_alone_is_a_relay_with_empty_text() -> None:
    # The caller answers "need_text".
    assert shape(parse_worker("#4821")) == cmd(Action.RELAY, "4821", explicit=True)


@pytest.mark.parametrize("text", ["列表", "list", "LIST", "List", " 列表 ", "list.", "查询"])
def test_list(text: str) -> None:
    assert parse_worker(text).action is Action.LIST


@pytest.mark.parametrize("text", ["帮助", "help", "HELP", "?", "？", "指令", "help!"])
def test_help(text: str) -> None:
    parsed = parse_worker(text)
    assert parsed.action is Action.HELP
    assert parsed.code is None


def test_list_and_help_words_inside_a_sentence_are_not_commands() -> None:
    assert parse_worker("请帮助居民").action is Action.RELAY
    assert parse_worker("4821 help").action is Action.RELAY


# ---------------------------------------------------------------- without a code


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("收到", cmd(Action.CLAIM)),
        ("ok", cmd(Action.CLAIM)),
        ("OK", cmd(Action.CLAIM)),
        ("办结 已修好", cmd(Action.RESOLVE, arg="已修好")),
        ("done", cmd(Action.RESOLVE)),
        ("上报 需要执法", cmd(Action.ESCALATE, arg="需要执法")),
        ("转 DH-02", cmd(Action.TRANSFER, arg="DH-02")),
        ("move DH-02", cmd(Action.TRANSFER, arg="DH-02")),
        ("#收到", cmd(Action.CLAIM)),
        ("师傅下午到", cmd(Action.RELAY, arg="师傅下午到")),
        ("okay", cmd(Action.RELAY, arg="okay")),
    ],
)
def test_keyword_without_code(text: str, expected: tuple) -> None:
    assert shape(parse_worker(text)) == expected


def test_leading_number_that_may_be_a_year_is_not_explicit() -> None:
    parsed = parse_worker("2024年的事还没处理")
    # The caller checks "2024" against the sender's cases and, when it is not
    # one of them, relays the whole text to the only open case.
    assert parsed.code == "2024"
    assert parsed.explicit_code is False and parsed.glued is True
    assert parsed.action is Action.RELAY
    assert parsed.text == "2024年的事还没处理"


@pytest.mark.parametrize(
    ("text", "glued"),
    [
        ("1700 办结 已修好", False),
        ("1700，收到", False),
        ("1700", False),
        ("#1700师傅下午到", False),  # with its `#` it is a code
        ("1700师傅下午到", True),
        ("1700办结", True),
    ],
)
def test_a_bare_code_is_glued_when_words_run_on_from_it(text: str, glued: bool) -> None:
    assert parse_worker(text).glued is glued


@pytest.mark.parametrize("text", ["12 户停水", "12345678 收到", "13800138000"])
def test_numbers_outside_code_length_are_not_codes(text: str) -> None:
    parsed = parse_worker(text)
    assert parsed.code is None
    assert parsed.explicit_code is False


def test_code_lengths_accepted() -> None:
    assert parse_worker("123 收到").code == "123"
    assert parse_worker("123456 收到").code == "123456"
    assert parse_worker("#1234567 收到").code is None


# ---------------------------------------------------------------- residents


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("1", ResidentIntent.SATISFIED),
        ("１", ResidentIntent.SATISFIED),
        (" 1。", ResidentIntent.SATISFIED),
        ("满意", ResidentIntent.SATISFIED),
        ("非常满意", ResidentIntent.SATISFIED),
        ("2", ResidentIntent.NOT_SATISFIED),
        ("不满意", ResidentIntent.NOT_SATISFIED),
        ("不满意，还是没修好", ResidentIntent.NOT_SATISFIED),
        ("满意，谢谢", ResidentIntent.SATISFIED),
        ("退订", ResidentIntent.STOP),
        ("TD", ResidentIntent.STOP),
        ("td", ResidentIntent.STOP),
        ("STOP", ResidentIntent.STOP),
        ("Stop!", ResidentIntent.STOP),
        ("ＴＤ", ResidentIntent.STOP),
        ("订阅", ResidentIntent.START),
        ("START", ResidentIntent.START),
        ("start", ResidentIntent.START),
        ("帮助", ResidentIntent.HELP),
        ("进度", ResidentIntent.STATUS),
        ("查询", ResidentIntent.STATUS),
        ("Status", ResidentIntent.STATUS),
        ("查询一下水费怎么交", ResidentIntent.TEXT),
        ("HELP", ResidentIntent.HELP),
        ("help", ResidentIntent.HELP),
        ("?", ResidentIntent.HELP),
        ("？", ResidentIntent.HELP),
    ],
)
def test_resident_keywords(text: str, intent: ResidentIntent) -> None:
    assert parse_resident(text).intent is intent


@pytest.mark.parametrize(
    "text",
    [
        "3幢楼道灯坏了",
        "1号楼漏水",
        "12",
        "2楼有人吵闹",
        "满意度调查是什么",
        "stop the noise please",
        "不满意物业",
        "TD是什么意思",
        "help me",
        "我要订阅报纸",
    ],
)
def test_resident_free_text(text: str) -> None:
    parsed = parse_resident(text)
    assert parsed.intent is ResidentIntent.TEXT
    assert parsed.text == text


def test_resident_text_is_the_whole_message_as_written() -> None:
    assert parse_resident("　路灯坏了　　三天了 ").text == "路灯坏了 三天了"
    assert parse_resident("不满意，还是没修好").text == "不满意，还是没修好"
    assert parse_resident("ＴＤ").text == "ＴＤ"


# ---------------------------------------------------------------- properties


@given(st.text())
def test_parsers_never_raise(text: str) -> None:
    parse_worker(text)
    parse_resident(text)


@given(st.text())
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    worker = parse_worker(text)
    assert parse_worker(worker.text).text == worker.text
    resident = parse_resident(text)
    assert parse_resident(resident.text).text == resident.text


@given(st.text())
def test_arguments_come_from_the_text(text: str) -> None:
    parsed = parse_worker(text)
    if parsed.action is not Action.TRANSFER:
        assert parsed.arg in parsed.text


_worker_texts = st.one_of(
    st.text(),
    st.builds(
        lambda hash_, code, sep, word, rest: f"{hash_}{code}{sep}{word}{rest}",
        st.sampled_from(["", "#", "＃", "# "]),
        st.from_regex(r"[0-9０-９]{1,7}", fullmatch=True),
        st.sampled_from(["", " ", "　", "：", ","]),
        st.sampled_from(
            ["收到", "ok", "OK", "办结", "done", "上报", "esc", "转", "move", "好的", "列表", ""]
        ),
        st.text(max_size=12),
    ),
)


@given(_worker_texts)
def test_parsing_the_normalised_text_gives_the_same_command(text: str) -> None:
    parsed = parse_worker(text)
    assert parse_worker(parsed.text) == parsed
    resident = parse_resident(text)
    assert parse_resident(resident.text) == resident


@pytest.mark.parametrize(
    ("text", "automatic"),
    [
        ("【自动回复】您好，我正在开车，稍后联系您", True),
        ("正在开会，稍后回复", True),
        ("Auto-reply: I'm driving", True),
        ("ＡＵＴＯ ＲＥＰＬＹ", True),
        ("I am out of the office until Monday", True),
        ("师傅下午到，请家里留人", False),
        ("开车过去要十分钟", False),
        ("在吗", False),
    ],
)
def test_a_phones_automatic_reply_is_recognised(text: str, automatic: bool) -> None:
    assert looks_automatic(text) is automatic


@pytest.mark.parametrize(
    ("text", "opt_out"),
    [("退订", True), ("TD", True), ("ｓｔｏｐ", True), ("退订了吗", False), ("不要退订", False)],
)
def test_an_opt_out_word_alone(text: str, opt_out: bool) -> None:
    assert is_opt_out(text) is opt_out
