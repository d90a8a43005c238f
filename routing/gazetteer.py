"""The routing engine's gazetteer: from a resident's text to a grid, or a question.

`Gazetteer.decide` returns a `Decision`: *route* to a grid when one grid is
certain enough, *ask* when it is not (up to three numbered candidates, or the
missing part: building, number, natural village), *none* when the text names no
known place. It never routes on a weak guess: every route carries a confidence
at or above `ROUTE_AT`, and everything below it becomes a question.

How a text is read (after `normalize_address` and dropping unit and room):

1. The longest key found anywhere in the text wins (never inside a longer
   number). Keys are the gazetteer entries themselves and their *stems*: the
   estate, road or village an entry starts with (`翁山新村3幢` → `翁山新村`,
   `西码头村大岙` → `西码头村`).
2. A stem whose entries all belong to one grid maps to that grid (*prefix
   closure*); one spread over several grids needs the number that follows it in
   the text, else it is ambiguous. A number not listed falls back to the road's
   own entry when the gazetteer has one.
3. Same-named places in several areas (most districts have a 人民路) are told
   apart by the area names the text mentions, then by the sender's home area.
4. With no key in the text, a key of four or more characters is looked up with
   one character substituted (a typo or a homophone) or missing, scored with
   rapidfuzz; a fuzzy reading is routed only when it is unique and confident.

Pure: plain data in, decisions with evidence out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pypinyin import lazy_pinyin
from rapidfuzz.fuzz import ratio

from routing.address import AddressMatch, Entry, normalize_address, strip_unit_and_room

# A route needs at least this confidence; tuned on bench/data/routing_eval.csv.
ROUTE_AT = 0.75
MAX_CHOICES = 3
MAX_LISTED = 5  # candidates kept as evidence when asking for a missing part
FUZZY_MIN = 4  # shorter names are too easily confused to guess at

_NUMBERED = re.compile(r"^(.+?)(\d+)(幢|号)$")
_FOLLOW = re.compile(r"(\d+)(幢|号)?")
# "海山花园那边11号楼": a building a few words after the estate's name.
_FOLLOW_NEAR = re.compile(r"[^\d]{1,3}?(\d+)(幢|号)")
_CONFIDENCE = {
    "exact": 1.0,
    "number": 0.95,  # "翁山新村3" for 翁山新村3幢
    "closure": 0.95,  # every entry of the stem is in one grid
    "road": 0.9,  # a number not listed: the road's own entry
}


# Zhoushan's accent (and many residents' typing) does not tell zh/z, ch/c,
# sh/s, or -ng/-n apart: 山/三 and 民/明 sound alike.
_ACCENT = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("ng", "n"))


@lru_cache(maxsize=65536)
def sound(ch: str) -> str:
    """The toneless pinyin of one character as the local accent hears it; "" if none."""
    spelled = (lazy_pinyin(ch, errors="ignore") or [""])[0]
    if not spelled or not spelled.isalpha() or not spelled.isascii():
        return ""
    for a, b in _ACCENT:
        spelled = spelled.replace(a, b)
    return spelled


@dataclass(frozen=True)
class Candidate:
    """One grid a text may mean, with a label a resident recognises."""

    grid: str
    label: str


@dataclass(frozen=True)
class Decision:
    """What the gazetteer makes of a text: route, ask or none, and why."""

    action: str  # route | ask | none
    grid: str | None = None
    confidence: float = 0.0
    how: str = ""  # exact, number, closure, road, fuzzy, area, home
    key: str | None = None  # the normalised entry or stem that matched
    entry: str | None = None  # the gazetteer entry's own text, when one decided
    reason: str = ""
    candidates: tuple[Candidate, ...] = ()
    missing: str | None = None  # town | building | number | village: the part to ask for
    score: float | None = None  # the fuzzy score (0-100), when fuzzy

    @property
    def routed(self) -> bool:
        return self.action == "route" and self.grid is not None

    def evidence(self) -> dict[str, Any]:
        """A JSON-ready account of the decision, stored on the case."""
        out: dict[str, Any] = {
            "reason": self.reason,
            "how": self.how,
            "confidence": round(self.confidence, 3),
            "entry": self.entry,
            "key": self.key,
            "candidates": [{"grid": c.grid, "label": c.label} for c in self.candidates],
        }
        if self.missing:
            out["missing"] = self.missing
        if self.score is not None:
            out["score"] = round(self.score, 1)
        return out


@dataclass
class _Hit:
    key: str
    start: int
    end: int
    score: float = 100.0  # rapidfuzz ratio of the text to the key; 100 for an exact hit
    confidence: float = 1.0
    reading: str = "exact"  # exact | homophone | substitution | missing


@dataclass
class Gazetteer:
    """Entries and their stems, looked up by every substring of a text."""

    exact: dict[str, list[Entry]] = field(default_factory=dict)
    # stem → [(entry, its number after the stem or None)]
    stems: dict[str, list[tuple[Entry, int | None]]] = field(default_factory=dict)
    max_len: int = 0
    prefixes: set[str] = field(default_factory=set)  # every beginning of every key
    # Fuzzy keys: a key with one character replaced by "\0", or left out.
    substituted: dict[str, set[str]] = field(default_factory=dict)
    shortened: dict[str, set[str]] = field(default_factory=dict)
    fuzzy_lengths: tuple[int, ...] = ()

    @classmethod
    def build(cls, entries: Iterable[Entry]) -> Gazetteer:
        g = cls()
        seen: set[tuple[str, str, str]] = set()
        for entry in entries:
            norm = entry.normalized
            if not norm:
                continue
            g.exact.setdefault(norm, []).append(entry)
            numbered = _NUMBERED.match(norm)
            if numbered:
                g._add_stem(numbered.group(1), entry, int(numbered.group(2)), seen)
            for i, ch in enumerate(norm[:-1]):
                if ch == "村" and i >= 1:
                    g._add_stem(norm[: i + 1], entry, None, seen)
        keys = set(g.exact) | set(g.stems)
        g.max_len = max((len(k) for k in keys), default=0)
        g.prefixes = {key[:i] for key in keys for i in range(1, len(key) + 1)}
        lengths: set[int] = set()
        for key in keys:
            if len(key) < FUZZY_MIN or any(ch.isdigit() for ch in key):
                continue
            lengths.add(len(key))
            for i in range(len(key)):
                g.substituted.setdefault(f"{key[:i]}\0{key[i + 1 :]}", set()).add(key)
                g.shortened.setdefault(key[:i] + key[i + 1 :], set()).add(key)
        g.fuzzy_lengths = tuple(sorted(lengths, reverse=True))
        return g

    def _add_stem(
        self, stem: str, entry: Entry, number: int | None, seen: set[tuple[str, str, str]]
    ) -> None:
        mark = (stem, entry.normalized, entry.grid)
        if mark not in seen:
            seen.add(mark)
            self.stems.setdefault(stem, []).append((entry, number))

    def __len__(self) -> int:
        return sum(len(v) for v in self.exact.values())

    # ------------------------------------------------------------------ deciding

    def decide(self, text: str, *, home_area: Iterable[str] = ()) -> Decision:
        """Decide the grid for `text`, or what to ask the resident.

        `home_area` is the sender's registered grid and its ancestors' codes: it
        tells apart same-named places in different areas when the text does not.
        """
        norm = strip_unit_and_room(normalize_address(text))
        hits, others = self._exact_hits(norm)
        if not hits:
            hits = self._fuzzy_hits(norm)
            if not hits:
                return Decision("none", reason="no gazetteer entry in the text")
        how = "exact"
        picked: dict[int, Entry] = {}  # by identity: a stem may stand for hundreds
        for hit in hits:
            found, found_how = self._resolve(hit, norm)
            for e in found:
                picked.setdefault(id(e), e)
            if found_how != "exact":
                how = found_how
        entries = list(picked.values())
        key = hits[0].key
        score = min(h.score for h in hits)
        fuzzy = any(h.reading != "exact" for h in hits)
        if fuzzy:
            how = "fuzzy"
        elsewhere = {e.grid for h in others for e in self.exact[h.key]}
        if elsewhere and not elsewhere & {e.grid for e in entries}:
            # "从翁山新村3幢到人民路12号": two places of different grids in one text.
            for h in others:
                for e in self.exact[h.key]:
                    picked.setdefault(id(e), e)
            entries = list(picked.values())
            home_area = ()
        # Area names count only outside the places matched: a village's own
        # name is also its community's name.
        rest = norm
        for h in (*hits, *others):
            rest = rest[: h.start] + "|" * (h.end - h.start) + rest[h.end :]
        entries, narrowed = _narrow(entries, rest, set(home_area))
        grids = list(dict.fromkeys(e.grid for e in entries))
        confidence = _CONFIDENCE.get(how, 1.0)
        if fuzzy:
            confidence = min(h.confidence for h in hits)
        if narrowed == "area":
            confidence = min(confidence, 0.9)
        elif narrowed == "home":
            confidence = min(confidence, 0.8)
        candidates = _candidates(entries, grids[:MAX_LISTED])
        if len(grids) == 1 and confidence >= ROUTE_AT:
            entry = entries[0] if how in ("exact", "number", "road") else None
            shown = entry.text if entry is not None else key
            why = {"area": " in the area the text names", "home": " in the sender's area"}
            return Decision(
                "route",
                grid=grids[0],
                confidence=confidence,
                how=narrowed or how,
                key=key,
                entry=entry.text if entry is not None else None,
                reason=f"matched {shown} ({how}{why.get(narrowed or '', '')}) → {grids[0]}",
                candidates=candidates,
                score=score if fuzzy else None,
            )
        missing = _missing(entries) if len(grids) > MAX_CHOICES else None
        if len(grids) == 1:
            reason = f"{key} looks like {candidates[0].label}, score {score:.0f}: not sure enough"
        else:
            reason = f"{key} belongs to {len(grids)} grids"
        return Decision(
            "ask",
            confidence=confidence,
            how=how,
            key=key,
            reason=reason,
            candidates=candidates[:MAX_CHOICES] if missing is None else candidates,
            missing=missing,
            score=score if fuzzy else None,
        )

    def match(self, text: str, *, home_area: Iterable[str] = ()) -> AddressMatch:
        """`decide` in the shape of the first version's `GazetteerIndex.match`."""
        decision = self.decide(text, home_area=home_area)
        entries = tuple(
            Entry(text=c.label, normalized=normalize_address(c.label), grid=c.grid)
            for c in decision.candidates
        )
        return AddressMatch(
            grid=decision.grid if decision.routed else None,
            entry=decision.entry or decision.key if decision.routed else None,
            candidates=entries,
            reason=decision.reason,
        )

    # ------------------------------------------------------------------ internals

    def _exact_hits(self, norm: str) -> tuple[list[_Hit], list[_Hit]]:
        """The longest keys in the text, and other whole entries beside them."""
        longest: list[_Hit] = []  # the longest key starting at each position
        n = len(norm)
        # At most O(len(text) * max_len) set lookups, whatever the gazetteer's size.
        prefixes, exact, stems = self.prefixes, self.exact, self.stems
        for start in range(n):
            if start and norm[start].isdigit() and norm[start - 1].isdigit():
                continue  # "人民路12号" must not match inside "人民路112号"
            # Walk on while the text is still the beginning of some key: most
            # positions stop at their first character.
            found, end = 0, start + 1
            while end <= n:
                piece = norm[start:end]
                if piece not in prefixes:
                    break
                if (piece in exact or piece in stems) and not (
                    end < n and piece[-1].isdigit() and norm[end].isdigit()
                ):  # a key ending in "12" must not match "123"
                    found = end
                end += 1
            if found:
                longest.append(_Hit(norm[start:found], start, found))
        if not longest:
            return [], []
        top = max(h.end - h.start for h in longest)
        best: list[_Hit] = []
        for hit in longest:
            if hit.end - hit.start == top and all(h.key != hit.key for h in best):
                best.append(hit)
        others = [
            h
            for h in longest
            if h.key in self.exact
            and h.end - h.start >= FUZZY_MIN
            and all(h.end <= b.start or h.start >= b.end for b in best)
        ]
        return best, others

    def _fuzzy_hits(self, norm: str) -> list[_Hit]:
        found: dict[str, _Hit] = {}

        def consider(key: str, start: int, end: int, reading: str) -> None:
            score = float(ratio(norm[start:end], key))
            # A homophone (as the local accent hears it) is what residents who
            # type by pinyin get wrong; any other character is a weaker sign.
            confidence = {"homophone": 0.9, "substitution": 0.95 * score / 100}.get(
                reading, score / 100
            )
            if key not in found or found[key].confidence < confidence:
                found[key] = _Hit(key, start, end, score, confidence, reading)

        n = len(norm)
        for length in self.fuzzy_lengths:
            for start in range(0, n - length + 1):
                window = norm[start : start + length]
                for i in range(length):
                    for key in self.substituted.get(f"{window[:i]}\0{window[i + 1 :]}", ()):
                        same = sound(window[i]) == sound(key[i]) != ""
                        reading = "homophone" if same else "substitution"
                        consider(key, start, start + length, reading)
            if length <= FUZZY_MIN:
                continue  # a 4-character name less one is too short to recognise
            for start in range(0, n - length + 2):
                for key in self.shortened.get(norm[start : start + length - 1], ()):
                    consider(key, start, start + length - 1, "missing")
        # Every confident reading counts: two names within one edit of the text
        # (a typo of one, a missing character of the other) are a question, not
        # a pick. Weak readings beside a confident one are noise.
        hits = sorted(found.values(), key=lambda h: -h.confidence)
        strong = [h for h in hits if h.confidence >= ROUTE_AT] or hits
        # As with exact keys, the longer reading wins: 黄杨尖存礁头 is 黄杨尖村礁头,
        # not merely the village 黄杨尖村.
        return [
            h
            for h in strong
            if not any(
                o.start <= h.start and h.end <= o.end and len(o.key) > len(h.key) for o in strong
            )
        ]

    def _resolve(self, hit: _Hit, norm: str) -> tuple[list[Entry], str]:
        """The entries a key stands for in this text, and how they were found."""
        follow = _FOLLOW.match(norm, hit.end) or _FOLLOW_NEAR.match(norm, hit.end)
        members = self.stems.get(hit.key, [])
        own = self.exact.get(hit.key, [])
        if follow is not None and members:
            number = int(follow.group(1))
            listed = [e for e, n in members if n == number]
            if listed:
                return listed, "number"
            if own:
                return own, "road"
        if own:
            return own, "exact"
        grids = {e.grid for e, _n in members}
        return [e for e, _n in members], "closure" if len(grids) == 1 else "stem"


def _narrow(entries: list[Entry], norm: str, home: set[str]) -> tuple[list[Entry], str | None]:
    """Keep the entries of the area the text names, else of the sender's area."""
    # Entries of one grid share its area: score each grid once.
    first: dict[str, Entry] = {}
    for e in entries:
        first.setdefault(e.grid, e)
    if len(first) <= 1:
        return entries, None
    named = _top(first, lambda e: sum(1 for name in e.area_names if name and name in norm))
    if named is not None:
        return [e for e in entries if e.grid in named], "area"
    if home:
        local = _top(first, lambda e: len(home.intersection(e.area)))
        if local is not None:
            return [e for e in entries if e.grid in local], "home"
    return entries, None


def _top(first: dict[str, Entry], score: Any) -> set[str] | None:
    """The grids that score highest, if above 0 and not all alike."""
    scored = {grid: score(e) for grid, e in first.items()}
    best = max(scored.values())
    if best <= 0 or all(v == best for v in scored.values()):
        return None
    return {grid for grid, v in scored.items() if v == best}


def _candidates(entries: list[Entry], grids: list[str]) -> tuple[Candidate, ...]:
    by_grid: dict[str, list[Entry]] = {grid: [] for grid in grids}
    for e in entries:
        if e.grid in by_grid:
            by_grid[e.grid].append(e)
    return tuple(Candidate(grid, _label(by_grid[grid])) for grid in grids)


@lru_cache(maxsize=1 << 17)
def _numbered(normalized: str) -> tuple[str, int, str] | None:
    """`翁山新村3幢` → (`翁山新村`, 3, `幢`); None for an entry without a number."""
    found = _NUMBERED.match(normalized)
    return (found.group(1), int(found.group(2)), found.group(3)) if found else None


def _label(entries: list[Entry]) -> str:
    """`翁山新村1-3幢`, `人民路10-16号`, or the entries' own texts."""
    groups: dict[tuple[str, str], list[int]] = {}
    plain: list[str] = []
    for e in entries:
        numbered = _numbered(e.normalized)
        if numbered:
            groups.setdefault((numbered[0], numbered[2]), []).append(numbered[1])
        elif e.text not in plain:
            plain.append(e.text)
    parts = []
    for (stem, kind), numbers in groups.items():
        low, high = min(numbers), max(numbers)
        parts.append(f"{stem}{low}{kind}" if low == high else f"{stem}{low}-{high}{kind}")
    parts += plain
    return "、".join(parts[:2]) + ("等" if len(parts) > 2 else "")


def _missing(entries: list[Entry]) -> str:
    towns = {e.area[-2] for e in entries if len(e.area) >= 3}
    if len(towns) > 1:
        return "town"  # the same name in several towns: the number alone will not do
    kinds = [m[2] for e in entries if (m := _numbered(e.normalized))]
    if not kinds:
        return "village"
    return "building" if kinds.count("幢") >= kinds.count("号") else "number"


def home_answers(decision: Decision, home_grid: str | None) -> bool:
    """Whether the sender's registered home grid should answer a text the gazetteer did not route.

    It does when the text names no place, when the only reading is a weak
    fuzzy one (not worth a question to someone whose home we know), and when
    the home grid is one of the candidates of an ambiguous place.
    """
    if home_grid is None or decision.routed:
        return False
    if decision.action == "none" or decision.how == "fuzzy":
        return True
    return home_grid in {c.grid for c in decision.candidates}
