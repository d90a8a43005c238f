"""Cutting a text that is longer than a provider takes into numbered parts.

One function for every outbound SMS (`split`): a resident's 1,600-character
text forwarded with its prefix, a worker's long reply, an office's message.
Each part fits `limit` characters with its marker ("（1/3）"); a cut falls
after the last sentence or clause end, or the last space, in the final fifth
of a part when there is one there, else at the limit.
"""

from __future__ import annotations

# Where a part would rather end: after one of these (sentence ends first).
_ENDS = ("。！？!?\n", "；;，,、 ")


def split(body: str, limit: int, *, marker: str = "（{n}/{total}）") -> list[str]:
    """`body` as it is when it fits `limit`, else its parts, each `marker` +
    a piece, none longer than `limit`. The pieces joined give `body` back."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if len(body) <= limit:
        return [body]
    total = 2
    while True:
        width = limit - len(marker.format(n=total, total=total))
        if width < 1:
            raise ValueError(f"a limit of {limit} leaves no room for the text")
        pieces = _pieces(body, width)
        if len(pieces) <= total:
            # Fewer pieces than markers counted for: number them as they are.
            return [marker.format(n=n, total=len(pieces)) + p for n, p in enumerate(pieces, 1)]
        total = len(pieces)


def _pieces(body: str, width: int) -> list[str]:
    pieces: list[str] = []
    rest = body
    while len(rest) > width:
        cut = _cut(rest, width)
        pieces.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        pieces.append(rest)
    return pieces


def _cut(text: str, width: int) -> int:
    """How many characters of `text` the next piece takes (at most `width`)."""
    floor = width - max(1, width // 5)
    for ends in _ENDS:
        best = max(text.rfind(ch, floor, width) for ch in ends)
        if best >= 0:
            return best + 1
    return width
