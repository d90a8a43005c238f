"""Addresses: normalising Chinese address text and matching it to the gazetteer.

First version: exact matching of normalised gazetteer entries found anywhere
in the text, longest entry wins; entries of equal length that point to
different grids are told apart by the sender's home area, or reported as
ambiguous. The full engine (fuzzy matching, prefix closure, clarifying
questions) replaces `GazetteerIndex.match` later without changing its shape.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_UNITS = {"十": 10, "百": 100, "千": 1000}
_NUMERAL_RUN = re.compile(r"[零〇一二两三四五六七八九十百千]+(?=[幢号室单元楼层弄巷组村期区])")
_BUILDING_SYNONYMS = re.compile(r"(\d+)\s*(?:号楼|栋|座|幢|号幢)")
_UNIT_ROOM = re.compile(r"\d+\s*(?:单元|室|层|楼(?!\d))|\d+-\d+-?\d*室?$")
_PUNCT = re.compile(r"[\s\-—_,，。.、;；:：!！?？'\"“”‘’()（）\[\]【】<>《》#＃/\\]+")


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

    return _NUMERAL_RUN.sub(_sub, text)


def normalize_address(text: str) -> str:
    """Normalise address text for matching.

    Full-width → half-width, Chinese numerals before a building/number word →
    digits, building synonyms (`栋`, `号楼`, `座`) → `幢`, punctuation and
    spaces removed, letters lower-cased. Idempotent.
    """
    text = unicodedata.normalize("NFKC", text or "")
    text = text.replace("第", "")
    text = _numerals_to_digits(text)
    text = _BUILDING_SYNONYMS.sub(r"\1幢", text)
    text = _PUNCT.sub("", text)
    return text.lower()


def strip_unit_and_room(text: str) -> str:
    """Drop `3单元`, `402室` and the like: they never change the grid."""
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

        `home_area` (the sender's grid and its ancestors) breaks ties between
        entries of the same text in different areas.
        """
        norm = strip_unit_and_room(normalize_address(text))
        best: list[Entry] = []
        best_len = 0
        n = len(norm)
        # Scanning substrings costs O(len(text) * max_len) dictionary lookups,
        # independent of the gazetteer's size.
        for start in range(n):
            upper = min(n, start + self.max_len)
            for end in range(upper, start + best_len, -1):
                found = self.by_text.get(norm[start:end])
                if found:
                    if end - start > best_len:
                        best, best_len = list(found), end - start
                    else:
                        best.extend(found)
                    break
        if not best:
            return AddressMatch(grid=None, reason="no gazetteer entry in the text")
        grids = {e.grid for e in best}
        if len(grids) == 1:
            entry = best[0]
            return AddressMatch(grid=entry.grid, entry=entry.text, candidates=(entry,),
                                reason=f"matched {entry.text}")
        home = set(home_area)
        if home:
            local = [e for e in best if home.intersection(e.area)]
            if len({e.grid for e in local}) == 1:
                entry = local[0]
                return AddressMatch(grid=entry.grid, entry=entry.text, candidates=tuple(best),
                                    reason=f"matched {entry.text} in the sender's area")
        named = [e for e in best if any(name in norm for name in e.area_names if name)]
        if len({e.grid for e in named}) == 1:
            entry = named[0]
            return AddressMatch(grid=entry.grid, entry=entry.text, candidates=tuple(best),
                                reason=f"matched {entry.text} in the area the text names")
        unique = {e.grid: e for e in best}
        return AddressMatch(grid=None, candidates=tuple(unique.values()),
                            reason=f"{best[0].text} belongs to {len(unique)} grids")
