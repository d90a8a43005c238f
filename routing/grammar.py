"""The SMS reply grammar, for team members and for residents.

Pure parsing: it turns a text into a command and never decides whether the
code exists or the sender may act. A leading number without `#` may be the
start of an ordinary sentence ("2024年…"), so the parser says whether the
code was explicit and the caller checks it against the sender's cases.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    CLAIM = "claim"
    RESOLVE = "resolve"
    ESCALATE = "escalate"
    TRANSFER = "transfer"
    RELAY = "relay"
    LIST = "list"
    HELP = "help"
    DUTY = "duty"


@dataclass(frozen=True)
class WorkerCommand:
    action: Action
    code: str | None = None
    # True when the code was written with `#`: it is certainly a code.
    explicit_code: bool = False
    # The note, reason, grid code or relayed text.
    arg: str = ""
    # The whole text after normalisation, for when a bare number turns out
    # not to be a case code and the text is relayed as it is.
    text: str = ""


class ResidentIntent(StrEnum):
    SATISFIED = "satisfied"
    NOT_SATISFIED = "not_satisfied"
    STOP = "stop"
    START = "start"
    HELP = "help"
    TEXT = "text"


@dataclass(frozen=True)
class ResidentMessage:
    intent: ResidentIntent
    text: str


CODE_DIGITS = (3, 6)

_CLAIM = {"收到", "签收", "认领", "ok", "ack", "claim", "好的", "好"}
_RESOLVE = {"办结", "完成", "已办结", "done", "close", "resolve", "resolved", "closed"}
_ESCALATE = {"上报", "esc", "escalate", "升级"}
_TRANSFER = {"转", "转办", "转交", "move", "transfer"}
_LIST = {"列表", "list", "ls", "查询"}
_HELP = {"帮助", "help", "?", "？", "h", "指令"}
_DUTY = {"值班", "duty"}

# Longest keywords first so that "已办结" wins over "办结" and "转办" over "转".
_KEYWORDS: list[tuple[str, Action]] = sorted(
    [(k, Action.CLAIM) for k in _CLAIM]
    + [(k, Action.RESOLVE) for k in _RESOLVE]
    + [(k, Action.ESCALATE) for k in _ESCALATE]
    + [(k, Action.TRANSFER) for k in _TRANSFER],
    key=lambda item: -len(item[0]),
)
_ARG_ACTIONS = {Action.RESOLVE, Action.ESCALATE, Action.TRANSFER}
_SEPARATORS = " \t\r\n:,.;!、，。：；！"
_CODE_RE = re.compile(r"^(#?)(\d{%d,%d})(?!\d)" % CODE_DIGITS)


def normalize_text(text: str) -> str:
    """NFKC (full-width → half-width), trimmed, inner whitespace runs collapsed."""
    text = unicodedata.normalize("NFKC", text or "")
    return re.sub(r"\s+", " ", text).strip()


def _is_ascii_word(keyword: str) -> bool:
    return keyword.isascii() and keyword.isalpha()


def _match_keyword(rest: str) -> tuple[Action, str] | None:
    lowered = rest.lower()
    for keyword, action in _KEYWORDS:
        if not lowered.startswith(keyword):
            continue
        tail = rest[len(keyword) :]
        # English keywords must stand alone ("ok" but not "okay then"),
        # Chinese ones may run straight into their argument ("转DH-01").
        if _is_ascii_word(keyword) and tail and tail[0].isalnum():
            continue
        if action is Action.CLAIM and tail.strip(_SEPARATORS):
            # "好的，马上到" is a relay that happens to start with a claim word.
            if keyword in {"好的", "好"}:
                return None
            # "收到 谢谢" still claims; the rest is dropped, as people expect.
        return action, tail.strip(_SEPARATORS)
    return None


def parse_worker(text: str) -> WorkerCommand:
    """Parse a text from a team member or office duty phone.

    `4821 收到`, `#4821 ok`, `4821 办结 已修好`, `4821 上报 需要执法`,
    `4821 转 DH-02`, `4821 <text>`, `列表`, `帮助`, or a keyword / text without
    a code (the caller applies it to the sender's only open case).
    """
    clean = normalize_text(text)
    lowered = clean.lower()
    bare = lowered.strip(_SEPARATORS)
    if bare in _LIST:
        return WorkerCommand(Action.LIST, text=clean)
    if bare in _HELP or clean in {"?", "？"}:
        return WorkerCommand(Action.HELP, text=clean)
    if bare in _DUTY:
        return WorkerCommand(Action.DUTY, text=clean)

    code: str | None = None
    explicit = False
    rest = clean
    match = _CODE_RE.match(clean)
    if match:
        explicit = bool(match.group(1))
        code = match.group(2)
        rest = clean[match.end() :].lstrip(_SEPARATORS)
    elif clean.startswith("#"):
        rest = clean[1:].lstrip(_SEPARATORS)

    keyword = _match_keyword(rest)
    if keyword is not None:
        action, arg = keyword
        if action not in _ARG_ACTIONS:
            arg = ""
        return WorkerCommand(action, code=code, explicit_code=explicit, arg=arg, text=clean)
    return WorkerCommand(Action.RELAY, code=code, explicit_code=explicit, arg=rest, text=clean)


_SATISFIED = {"1", "满意", "非常满意", "satisfied", "yes", "y"}
_NOT_SATISFIED = {"2", "不满意", "not satisfied", "no", "n"}
_STOP = {"退订", "td", "stop", "unsubscribe", "cancel"}
_START = {"订阅", "start", "unstop", "subscribe"}
_RESIDENT_HELP = {"帮助", "help", "?", "？", "info"}


def parse_resident(text: str) -> ResidentMessage:
    """Parse a text from a resident: a rating, opt-out/in, help, or free text."""
    clean = normalize_text(text)
    bare = clean.lower().strip(_SEPARATORS + "。.!")
    if clean in {"?", "？"} or bare in _RESIDENT_HELP:
        return ResidentMessage(ResidentIntent.HELP, clean)
    if bare in _STOP:
        return ResidentMessage(ResidentIntent.STOP, clean)
    if bare in _START:
        return ResidentMessage(ResidentIntent.START, clean)
    if bare in _SATISFIED:
        return ResidentMessage(ResidentIntent.SATISFIED, clean)
    if bare in _NOT_SATISFIED:
        return ResidentMessage(ResidentIntent.NOT_SATISFIED, clean)
    return ResidentMessage(ResidentIntent.TEXT, clean)
