"""CSV downloads of the console's tables.

UTF-8 with a byte-order mark, so that Excel on a Chinese Windows reads the
names right; a cell that a spreadsheet would take for a formula (`=`, `+`,
`-`, `@` first) is written with a leading `'` (region names come from
imported files, and a downloaded report must not run anything).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from fastapi.responses import Response

_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_FORMULA) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_text(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([cell(v) for v in header])
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return buffer.getvalue()


def csv_response(
    filename: str, header: Sequence[object], rows: Iterable[Sequence[object]]
) -> Response:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return Response(
        content=("\ufeff" + csv_text(header, rows)).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f"attachment; filename=\"{safe}\"; filename*=UTF-8''"
            + quote(safe),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
