"""Placement rules: which evidence places a text, and how an answer to a question is read.

Precedence (DESIGN.md): a confident address in the text (the request is
about that place) > a shared location (Latitude/Longitude) > the registered
home. Whatever else: ask. `app/inbound/placement.py` gathers the evidence
(gazetteer, grid shapes, the resident) and records the decision.
"""

from __future__ import annotations

import re

PRECEDENCE = ("address", "location", "registered")

_CHOICE = re.compile(r"^\s*(?:回复|选|第)?\s*([1-9])\s*(?:号|个)?\s*$")


def winner(
    *, address: str | None, location: str | None, registered: str | None
) -> tuple[str, str] | None:
    """(method, grid) of the first evidence in PRECEDENCE that names a grid;
    None: nothing does, ask."""
    named = {"address": address, "location": location, "registered": registered}
    for method in PRECEDENCE:
        grid = named[method]
        if grid is not None:
            return method, grid
    return None


def choice_number(answer: str, offered: int) -> int | None:
    """The candidate (1-based) a digit answer picks (`1`, `回复2`, `第3个`) among
    `offered`; None when the answer is not such a pick or is out of range.
    `answer` is normalised already (full-width digits folded)."""
    found = _CHOICE.match(answer)
    if not offered or found is None:
        return None
    number = int(found.group(1))
    return number if 1 <= number <= offered else None


def answer_readings(answer: str, *, asked_key: str | None, first_text: str) -> list[str]:
    """How else to read an answer that alone names no confident address, in turn:
    after the place the question named (`翁山新村` + `3幢`), then after the first
    text, which may name the estate while the answer names only the building."""
    readings = [f"{asked_key}{answer}"] if asked_key else []
    readings.append(f"{first_text} {answer}")
    return readings
