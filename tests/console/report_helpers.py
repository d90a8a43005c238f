"""Helpers of the map, statistics and duty page tests: boundaries and
households on the API tests' two-county city, and a reader for the pages' tables."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from html.parser import HTMLParser

from shapely.geometry import box, mapping
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.directory import GridShape, Region
from tests.factories import make_resident

DH_RESIDENT_2 = "+8613700000002"  # a second household of DH-01


def square(x: float, y: float) -> dict[str, object]:
    return dict(
        mapping(box(122.0 + x * 0.02, 30.0 + y * 0.02, 122.02 + x * 0.02, 30.02 + y * 0.02))
    )


def add_boundaries(session: Session) -> None:
    """On top of the API tests' city (tests/api/conftest.py `city`): boundaries
    for DH-01, DH-HN-01 and PT-01 (DH-02 has none) and a second household in
    DH-01. Households: DH-01 2, DH-HN-01 1, PT-01 1, DH-02 none."""
    grids = {r.code: r for r in session.scalars(select(Region).where(Region.level == "grid"))}
    make_resident(
        session, phone=DH_RESIDENT_2, name="钱叔", grid=grids["DH-01"], address="翁山新村5幢"
    )
    for code, (x, y) in (("DH-01", (0, 0)), ("DH-HN-01", (1, 0)), ("PT-01", (5, 3))):
        session.add(GridShape(grid_id=grids[code].id, geometry=square(x, y)))
    session.flush()


@dataclass
class Table:
    rows: list[list[str]] = field(default_factory=list)
    codes: list[str | None] = field(default_factory=list)  # each body row's data-code
    foot: list[list[str]] = field(default_factory=list)

    def by_code(self) -> dict[str, list[str]]:
        return {c: r for c, r in zip(self.codes, self.rows, strict=True) if c}


class _TableReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, Table] = {}
        self._table: Table | None = None
        self._section = ""
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._table = self.tables.setdefault(a["id"] or "", Table())
        elif self._table is None:
            return
        elif tag in ("thead", "tbody", "tfoot"):
            self._section = tag
        elif tag == "tr":
            self._row = []
            if self._section == "tbody":
                self._table.codes.append(a.get("data-code"))
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if self._table is None:
            return
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._section == "tbody":
                self._table.rows.append(self._row)
            elif self._section == "tfoot":
                self._table.foot.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> dict[str, Table]:
    reader = _TableReader()
    reader.feed(html)
    return reader.tables


def csv_rows(body: bytes) -> list[list[str]]:
    text = body.decode("utf-8")
    assert text.startswith("\ufeff"), "CSV downloads start with a BOM for Excel"
    return list(csv.reader(io.StringIO(text[1:])))
