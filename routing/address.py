"""Addresses: normalising Chinese address text and matching it to the gazetteer.

`normalize_address` and `strip_unit_and_room` are what every match is made
on. `GazetteerIndex` is the first version's exact matcher, kept for its
callers and tests; the routing engine (prefix closure, road fallback, fuzzy
matching, decisions with confidence and questions) is `routing.gazetteer`,
whose `Gazetteer.match` answers in the same `AddressMatch` shape.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_UNITS = {"十": 10, "百": 100, "千": 1000}
_NUMERALS = "零〇一二两三四五六七八九十百千"
# A Chinese numeral is a number only before a word that numbers something:
# 三幢, 十一号, 二十座; 七一村 too, but not 十字路口 or 一品小区.
_NUMERAL_RUN = re.compile(rf"[{_NUMERALS}]+(?=[幢栋座号室单元楼层弄巷组村期区户])")
# 第一, 第十一: an ordinal is always a number, whatever follows it.
_ORDINAL = re.compile(rf"第+([{_NUMERALS}]+|\d+)")
_BUILDING_SYNONYMS = re.compile(r"(\d+)(?:号楼|号幢|栋|座|幢)")
_UNIT_ROOM = re.compile(r"\d+(?:单元|室|层|楼(?!\d))")
_PUNCT = re.compile(r"[\s\-—_,，。.、;；:：!！?？'\"“”‘’()（）\[\]【】<>《》#＃/\\·・]+")


def chinese_to_int(run: str) -> int | None:
    """`十一` → 11, `二十` → 20, `一百零五` → 105, `三` → 3; None if not a numeral."""
    if not run:
        return None
    if all(ch in _DIGITS for ch in run):
        # Digit-by-digit form: 二〇二 → 202
        return int("".join(str(_DIGITS[ch]) for ch in run))
    total, current = 0, 0
    for ch in run:
        if ch in _DIGITS:
            current = _DIGITS[ch]
        elif ch in _UNITS:
            total += (current or 1) * _UNITS[ch]
            current = 0
        else:
            return None
    return total + current


def _numerals_to_digits(text: str) -> str:
    def _sub(match: re.Match[str]) -> str:
        value = chinese_to_int(match.group(0))
        return str(value) if value is not None else match.group(0)

    def _ordinal(match: re.Match[str]) -> str:
        run = match.group(1)
        value = run if run.isdigit() else chinese_to_int(run)
        return str(value) if value is not None else match.group(0)

    return _NUMERAL_RUN.sub(_sub, _ORDINAL.sub(_ordinal, text))


def _normalize_once(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    # Spaces and punctuation go first, so that "3号 楼" and "十 号" read like
    # "3号楼" and "十号" and a second pass finds nothing more to do.
    text = _PUNCT.sub("", text)
    text = _numerals_to_digits(text)
    return _BUILDING_SYNONYMS.sub(r"\1幢", text)


def normalize_address(text: str) -> str:
    """Normalise address text for matching.

    Full-width → half-width, ordinals (`第一`) and Chinese numerals before a
    building/number word → digits, building synonyms (`栋`, `号楼`, `座`) →
    `幢`, punctuation and spaces removed, letters lower-cased. Idempotent.
    """
    text = text or ""
    # Removing a character can bring a base letter and a combining mark
    # together, which NFKC then composes: repeat until nothing changes.
    for _ in range(4):
        again = _normalize_once(text)
        if again == text:
            break
        text = again
    return text


def strip_unit_and_room(text: str) -> str:
    """Drop `3单元`, `402室`, `5楼` and the like: they never change the grid."""
    return _UNIT_ROOM.sub("", text)


@dataclass(frozen=True)
class Entry:
    text: str
    normalized: str
    grid: str
    # Codes of the grid's ancestors (community, town, county), to tell apart
    # entries that share a text in different areas.
    area: tuple[str, ...] = ()
    # Normalised names of those ancestors ("定海区", "解放街道"), which a text
    # may name to say which of several same-named roads it means.
    area_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class AddressMatch:
    """The gazetteer's answer for a text."""

    grid: str | None
    entry: str | None = None
    candidates: tuple[Entry, ...] = ()
    reason: str = ""

    @property
    def ambiguous(self) -> bool:
        return self.grid is None and len(self.candidates) > 1


@dataclass
class GazetteerIndex:
    """Normalised gazetteer entries, looked up by every substring of a text."""

    by_text: dict[str, list[Entry]] = field(default_factory=dict)
    max_len: int = 0

    @classmethod
    def build(cls, entries: Iterable[Entry]) -> GazetteerIndex:
        index = cls()
        for entry in entries:
            if not entry.normalized:
                continue
            index.by_text.setdefault(entry.normalized, []).append(entry)
            index.max_len = max(index.max_len, len(entry.normalized))
        return index

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_text.values())

    def match(self, text: str, *, home_area: Iterable[str] = ()) -> AddressMatch:
        """Find the longest gazetteer entry inside `text`.

        Entries of that length that point to different grids are told apart
        by the area names the text itself mentions ("普陀区人民路"), then by
        `home_area` (the sender's grid and its ancestors): the entries sharing
        the most of those areas win. Otherwise the answer is ambiguous and
        carries one candidate per grid.
        """
        norm = strip_unit_and_room(normalize_address(text))
        best: list[Entry] = []
        best_len = 0
        n = len(norm)
        # Scanning substrings costs O(len(text) * max_len) dictionary lookups,
        # independent of the gazetteer's size.
        for start in range(n):
            if start and norm[start].isdigit() and norm[start - 1].isdigit():
                continue  # "人民路12号" must not match inside "人民路112号"
            upper = min(n, start + self.max_len)
            for end in range(upper, start + max(best_len, 1) - 1, -1):
                if end < n and norm[end - 1].isdigit() and norm[end].isdigit():
                    continue  # an entry ending in "12" must not match "123"
                found = self.by_text.get(norm[start:end])
                if found:
                    if end - start > best_len:
                        best, best_len = list(found), end - start
                    else:
                        best.extend(e for e in found if e not in best)
                    break
        if not best:
            return AddressMatch(grid=None, reason="no gazetteer entry in the text")
        if len({e.grid for e in best}) == 1:
            entry = best[0]
            return AddressMatch(
                grid=entry.grid,
                entry=entry.text,
                candidates=(entry,),
                reason=f"matched {entry.text}",
            )
        named = _most(best, lambda e: sum(1 for name in e.area_names if name and name in norm))
        if named is not None:
            return AddressMatch(
                grid=named.grid,
                entry=named.text,
                candidates=tuple(best),
                reason=f"matched {named.text} in the area the text names",
            )
        home = set(home_area)
        local = _most(best, lambda e: len(home.intersection(e.area))) if home else None
        if local is not None:
            return AddressMatch(
                grid=local.grid,
                entry=local.text,
                candidates=tuple(best),
                reason=f"matched {local.text} in the sender's area",
            )
        unique = {e.grid: e for e in best}
        return AddressMatch(
            grid=None,
            candidates=tuple(unique.values()),
            reason=f"{best[0].text} belongs to {len(unique)} grids",
        )


def _most(entries: list[Entry], score: Callable[[Entry], int]) -> Entry | None:
    """The entry that scores highest, if it scores above 0 and its grid alone does."""
    scored = [(score(e), e) for e in entries]
    top = max(s for s, _ in scored)
    if top <= 0:
        return None
    winners = [e for s, e in scored if s == top]
    return winners[0] if len({e.grid for e in winners}) == 1 else None
