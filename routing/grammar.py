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
    # The note, reason, grid code or relayed text, as the sender wrote it
    # (full-width punctuation kept: residents read it).
    arg: str = ""
    # The whole text, whitespace collapsed, for when a bare number turns out
    # not to be a case code and the text is relayed as it is.
    text: str = ""
    # A bare code run on into the words after it ("2024年的账单…"): perhaps a
    # number that starts a sentence rather than a code.
    glued: bool = False


class ResidentIntent(StrEnum):
    SATISFIED = "satisfied"
    NOT_SATISFIED = "not_satisfied"
    STOP = "stop"
    START = "start"
    HELP = "help"
    STATUS = "status"
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
_HELP = {"帮助", "help", "?", "h", "指令"}
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
# What the sender may have typed for those, before folding.
_WIDE_SEPARATORS = _SEPARATORS + "\u3000﹐﹑﹒﹔﹕﹗｡､"
# `#` may be followed by a space (`# 4821 收到`); digits must not run on.
_CODE_RE = re.compile(rf"^(?:(#) ?)?(\d{{{CODE_DIGITS[0]},{CODE_DIGITS[1]}}})(?!\d)")
# "收到了", "办结了，已修好": the particle is not part of the note.
_PARTICLE = "了"


def normalize_text(text: str) -> str:
    """NFKC (full-width → half-width), trimmed, inner whitespace runs collapsed."""
    text = unicodedata.normalize("NFKC", text or "")
    return re.sub(r"\s+", " ", text).strip()


def _display(text: str) -> str:
    """The text as written, trimmed, whitespace runs (incl. `　`) collapsed."""
    return re.sub(r"\s+", " ", text or "").strip()


class _Folded:
    """`display` folded character by character (NFKC), for reading codes and
    keywords, with a map back so that arguments keep the sender's own form."""

    def __init__(self, display: str) -> None:
        self.display = display
        chars: list[str] = []
        self._origin: list[int] = []
        for i, ch in enumerate(display):
            folded = unicodedata.normalize("NFKC", ch)
            chars.append(folded)
            self._origin.extend([i] * len(folded))
        self.text = "".join(chars)

    def original(self, suffix: str, *, trim_end: bool = True) -> str:
        """The part of `display` that `suffix` (a suffix of `text`) came from.

        Notes and reasons lose trailing punctuation (templates add their own);
        relayed text keeps it.
        """
        if not suffix:
            return ""
        start = self._origin[len(self.text) - len(suffix)]
        part = self.display[start:].lstrip(_WIDE_SEPARATORS)
        return part.rstrip(_WIDE_SEPARATORS) if trim_end else part


def _is_ascii_word(keyword: str) -> bool:
    return keyword.isascii() and keyword.isalpha()


def _match_keyword(rest: str) -> tuple[Action, str] | None:
    """The keyword `rest` starts with and what follows it (left-stripped)."""
    lowered = rest.lower()
    for keyword, action in _KEYWORDS:
        if not lowered.startswith(keyword):
            continue
        tail = rest[len(keyword) :]
        head = tail[:1]
        # English keywords must stand alone ("ok" but not "okay then"), though
        # Chinese may follow at once ("ok好的", "done已修好"); Chinese keywords
        # may run straight into their argument ("办结已修好", "转DH-01").
        if _is_ascii_word(keyword) and head.isascii() and head.isalnum():
            continue
        # A grid code is ASCII: "转告居民…", "转达…" are sentences to relay.
        if action is Action.TRANSFER and head and not head.isascii() and head not in _SEPARATORS:
            continue
        if not _is_ascii_word(keyword):
            tail = tail.lstrip(_PARTICLE)
        tail = tail.lstrip(_SEPARATORS)
        # "好的，马上到" is a relay that happens to start with a claim word;
        # "收到 谢谢" still claims, and the rest is dropped, as people expect.
        if keyword in {"好的", "好"} and tail.strip(_SEPARATORS):
            return None
        return action, tail
    return None


def parse_worker(text: str) -> WorkerCommand:
    """Parse a text from a team member or office duty phone.

    `4821 收到`, `#4821 ok`, `4821 办结 已修好`, `4821 上报 需要执法`,
    `4821 转 DH-02`, `4821 <text>`, `列表`, `帮助`, or a keyword / text without
    a code (the caller applies it to the sender's only open case). Codes and
    keywords are read in any case and width; `explicit_code` says whether the
    code had its `#`, since "2024年…" may just start a sentence.
    """
    folded = _Folded(_display(text))
    clean, shown = folded.text, folded.display
    bare = clean.lower().strip(_SEPARATORS)
    if bare in _LIST:
        return WorkerCommand(Action.LIST, text=shown)
    if bare in _HELP:
        return WorkerCommand(Action.HELP, text=shown)
    if bare in _DUTY:
        return WorkerCommand(Action.DUTY, text=shown)

    code: str | None = None
    explicit = glued = False
    rest = clean
    match = _CODE_RE.match(clean)
    if match:
        explicit = bool(match.group(1))
        code = match.group(2)
        after = clean[match.end() : match.end() + 1]
        glued = not explicit and after != "" and after not in _SEPARATORS
        rest = clean[match.end() :].lstrip(_SEPARATORS)
    elif clean.startswith("#"):
        # A `#` without a usable code ("#收到", "#12345678"): drop the mark.
        rest = clean[1:].lstrip(_SEPARATORS)

    keyword = _match_keyword(rest)
    if keyword is not None:
        action, tail = keyword
        arg = folded.original(tail) if action in _ARG_ACTIONS else ""
        if action is Action.TRANSFER:
            # A grid code is one word, read in its folded (ASCII) form.
            arg = next(iter(tail.split()), "").strip(_SEPARATORS)
        return WorkerCommand(
            action, code=code, explicit_code=explicit, arg=arg, text=shown, glued=glued
        )
    relayed = folded.original(rest, trim_end=False)
    return WorkerCommand(
        Action.RELAY, code=code, explicit_code=explicit, arg=relayed, text=shown, glued=glued
    )


# What phones send by themselves: a driving mode, an out-of-office rule, a
# busy reply. Such a text from a team member is never relayed to a resident.
_AUTOMATIC = re.compile(
    r"自动回复|自动答复|正在开车|驾驶中|开车中|正在开会|会议中|暂时无法(接听|回复)|稍后(回复|联系)"
    r"|auto[- ]?reply|automatic reply|out of (the )?office|i'?m driving|i am driving"
    r"|currently unavailable",
    re.IGNORECASE,
)


def looks_automatic(text: str) -> bool:
    """Whether `text` reads as a phone's automatic reply, not a person's words."""
    return bool(_AUTOMATIC.search(_Folded(_display(text)).text))


def is_opt_out(text: str) -> bool:
    """Whether `text` is only an opt-out word (退订, TD, STOP…)."""
    return parse_resident(text).intent is ResidentIntent.STOP


_SATISFIED = {"1", "满意", "很满意", "非常满意", "satisfied", "yes", "y"}
_NOT_SATISFIED = {"2", "不满意", "很不满意", "非常不满意", "not satisfied", "no", "n"}
_STOP = {"退订", "td", "stop", "unsubscribe", "cancel"}
_START = {"订阅", "start", "unstop", "subscribe"}
_RESIDENT_HELP = {"帮助", "help", "?", "info"}
_RESIDENT_STATUS = {"进度", "查询", "查进度", "查询进度", "status"}
# A rating word may be followed by a reason: "不满意，还没修好".
_RATING_PREFIX = re.compile(
    r"^(非常不满意|很不满意|不满意|非常满意|很满意|满意)[ ,.;!:、，。：；！]"
)


def parse_resident(text: str) -> ResidentMessage:
    """Parse a text from a resident: a rating, opt-out/in, help, or free text.

    `text` is always the whole message as written (whitespace collapsed), so
    that a rating word sent when there is nothing to rate can still open or
    extend a case.
    """
    shown = _display(text)
    clean = _Folded(shown).text
    bare = clean.lower().strip(_SEPARATORS)
    if bare in _RESIDENT_HELP:
        return ResidentMessage(ResidentIntent.HELP, shown)
    if bare in _RESIDENT_STATUS:
        return ResidentMessage(ResidentIntent.STATUS, shown)
    if bare in _STOP:
        return ResidentMessage(ResidentIntent.STOP, shown)
    if bare in _START:
        return ResidentMessage(ResidentIntent.START, shown)
    if bare in _SATISFIED:
        return ResidentMessage(ResidentIntent.SATISFIED, shown)
    if bare in _NOT_SATISFIED:
        return ResidentMessage(ResidentIntent.NOT_SATISFIED, shown)
    rating = _RATING_PREFIX.match(clean)
    if rating:
        word = rating.group(1)
        intent = ResidentIntent.SATISFIED if word in _SATISFIED else ResidentIntent.NOT_SATISFIED
        return ResidentMessage(intent, shown)
    return ResidentMessage(ResidentIntent.TEXT, shown)
