"""The file-agnostic half of `gridline import`: reading a CSV file into rows that
remember their line, collecting `file:line: reason` errors, the checks every
file shares (phones, region codes, empty values), and upserting rows by natural
key in bulk. The rules of each file live in `app.importer.files`.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import phonenumbers
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from app.models.base import Base
from app.models.directory import Region
from sms.phones import InvalidPhone, mask_phone, normalize_phone

Progress = Callable[[str], None]

BATCH = 5000
PROGRESS_EVERY = 50_000


@dataclass
class FileCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, other: FileCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged

    def __str__(self) -> str:
        return f"{self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged"


class FileErrors:
    """A file's errors as (line, reason), rendered `file:line: reason` in line order."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, reason: str) -> None:
        self.items.append((line, reason))

    def __len__(self) -> int:
        return len(self.items)

    def render(self) -> list[str]:
        # Checks run in several passes; a stable sort keeps each line's reasons in order.
        ordered = sorted(self.items, key=lambda item: item[0])
        return [f"{self.file}:{line}: {reason}" for line, reason in ordered]


@dataclass(frozen=True)
class CsvRow:
    line: int  # the physical line the record starts on; the header is line 1
    cells: dict[str, str]

    def __getitem__(self, column: str) -> str:
        # Optional columns may be absent from the header: they read as empty.
        return self.cells.get(column, "")


class StepProgress:
    """Short progress lines for one file, only where a file is big enough to wait for."""

    def __init__(self, file: str, say: Progress) -> None:
        self.file, self.say = file, say

    def checked(self, done: int, total: int) -> None:
        if done % PROGRESS_EVERY == 0:
            self.say(f"{self.file}: {done}/{total} checked")

    def written(self, done: int, total: int) -> None:
        if total >= PROGRESS_EVERY:
            self.say(f"{self.file}: {done}/{total} written")


def clean(text: str) -> str:
    """NFKC and stripped: spreadsheets typed with a Chinese input method give
    full-width letters and digits (`ＤＨ－０１`), which must equal `DH-01`."""
    return unicodedata.normalize("NFKC", text).strip()


def read_csv(path: Path, columns: Sequence[str], errors: FileErrors) -> list[CsvRow] | None:
    """The file's non-blank rows keyed by lower-cased column name.

    Returns None when the file cannot be read row by row at all (not UTF-8, no
    header, a required column missing): the errors say why. Rows with the wrong
    number of cells are reported and left out. Columns not asked for are ignored.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        errors.add(line, "not UTF-8 text (save the file as CSV UTF-8)")
        return None
    # newline="" leaves line breaks to the csv module, so quoted multi-line cells
    # work and `line_num` counts physical lines.
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        errors.add(1, f"unreadable CSV: {exc}")
        return None
    if not header or not any(cell.strip() for cell in header):
        errors.add(1, "no header row")
        return None
    names = [clean(cell).lower() for cell in header]
    for name in columns:
        if name not in names:
            errors.add(1, f"missing column '{name}'")
    for name in sorted({n for n in names if n and names.count(n) > 1}):
        errors.add(1, f"column '{name}' appears twice")
    if errors:
        return None
    rows: list[CsvRow] = []
    previous = reader.line_num
    try:
        for cells in reader:
            line, previous = previous + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # blank lines, and rows of empty cells that spreadsheets leave
            if len(cells) != len(names):
                errors.add(line, f"expected {len(names)} columns, found {len(cells)}")
                continue
            nul = [n for n, c in zip(names, cells, strict=True) if "\x00" in c]
            if nul:  # PostgreSQL cannot store it in text, SQLite would: refuse on both
                errors.add(line, f"a NUL character in column '{nul[0]}' (is it a binary file?)")
                continue
            rows.append(CsvRow(line, {n: c.strip() for n, c in zip(names, cells, strict=True)}))
    except csv.Error as exc:
        errors.add(previous + 1, f"unreadable CSV: {exc}")
    return rows


def first_seen(seen: dict[Any, int], key: Any, row: CsvRow, what: str, errors: FileErrors) -> bool:
    """Remember `key`; if an earlier row had it, report a duplicate and return False."""
    first = seen.setdefault(key, row.line)
    if first != row.line:
        errors.add(row.line, f"duplicate {what} (first on line {first})")
        return False
    return True


# --- checks shared by the files ----------------------------------------------------


@dataclass(frozen=True)
class RegionInfo:
    id: int
    level: str


def regions_by_code(session: Session) -> dict[str, RegionInfo]:
    rows = session.execute(select(Region.code, Region.id, Region.level))
    return {code: RegionInfo(id_, level) for code, id_, level in rows}


def required(row: CsvRow, columns: Sequence[str], errors: FileErrors) -> bool:
    missing = [c for c in columns if not row[c]]
    for column in missing:
        errors.add(row.line, f"{column} is empty")
    return not missing


def cn_mobile(raw: str) -> str | None:
    """`13800138000` → `+8613800138000` without `phonenumbers.parse`, else None.

    Parsing is two thirds of the cost of checking 370,000 residents. For eleven
    ASCII digits starting with 1, the number `parse` would build in region CN is
    exactly (86, the digits): CN's national prefix (0) and carrier codes (11xx,
    12xx, 179xx) never begin a valid mobile. Validity is still phonenumbers'
    own check, so this agrees with `normalize_phone` (belongs there, in time).
    """
    if len(raw) != 11 or raw[0] != "1" or not (raw.isascii() and raw.isdigit()):
        return None
    number = phonenumbers.PhoneNumber(country_code=86, national_number=int(raw))
    return "+86" + raw if phonenumbers.is_valid_number(number) else None


def phone_in(row: CsvRow, column: str, region: str, errors: FileErrors) -> str | None:
    """The column's phone as E.164, parsed in `region`; None (reported) if bad."""
    raw = row[column]
    if not raw:
        errors.add(row.line, f"{column} is empty")
        return None
    fast = cn_mobile(raw) if region.upper() == "CN" else None
    if fast is not None:
        return fast
    try:
        return normalize_phone(raw, region=region)
    except InvalidPhone:
        # Anything that could be somebody's number is masked, as in every other
        # message; the line number says which row. A few digits or words are shown.
        shown = mask_phone(raw) if sum(ch.isdigit() for ch in raw) >= 5 else raw
        errors.add(row.line, f"{column} '{shown}' is not a valid phone number")
        return None


def region_named(
    row: CsvRow,
    column: str,
    regions: dict[str, RegionInfo],
    levels: Sequence[str],
    errors: FileErrors,
) -> RegionInfo | None:
    """The region the column names, which must be of one of `levels`."""
    code = clean(row[column])
    if not code:
        errors.add(row.line, f"{column} is empty")
        return None
    info = regions.get(code)
    if info is None:
        errors.add(row.line, f"unknown {column} '{code}'")
        return None
    if info.level not in levels:
        errors.add(row.line, f"{column} '{code}' is a {info.level}, not a {' or '.join(levels)}")
        return None
    return info


# --- writing ---------------------------------------------------------------------


def _chunks(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def upsert(
    session: Session,
    model: type[Base],
    records: list[dict[str, Any]],
    *,
    key: tuple[str, ...],
    compare: tuple[str, ...],
    now: datetime,
    progress: StepProgress,
) -> FileCounts:
    """Insert new rows, update changed ones and count the rest, matched by natural `key`.

    `records` have unique keys and carry every column of `key` + `compare` (and
    whatever else a new row needs). Existing rows are loaded once into a dict
    and written with bulk statements: no query per row.
    """
    entity: Any = model
    columns = (entity.id, *(getattr(entity, c) for c in key + compare))
    width = len(key)
    existing = {
        tuple(r[1 : 1 + width]): (r[0], tuple(r[1 + width :]))
        for r in session.execute(select(*columns))
    }
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    unchanged = 0
    for record in records:
        found = existing.get(tuple(record[c] for c in key))
        if found is None:
            inserts.append({**record, "updated_at": now})
        elif found[1] != tuple(record[c] for c in compare):
            updates.append({"_id": found[0], **{c: record[c] for c in compare}, "updated_at": now})
        else:
            unchanged += 1
    # Core executemany, not the ORM's bulk mode: the ORM leaves out None values
    # and then groups rows by their set of keys, which degrades to one statement
    # per row when optional columns alternate between empty and filled.
    table = entity.__table__
    by_id = (
        update(table)
        .where(table.c.id == bindparam("_id"))
        .values({c: bindparam(c) for c in (*compare, "updated_at")})
    )
    total, done = len(inserts) + len(updates), 0
    for statement, rows in ((insert(table), inserts), (by_id, updates)):
        for batch in _chunks(rows):
            session.execute(statement, batch)
            done += len(batch)
            progress.written(done, total)
    return FileCounts(len(inserts), len(updates), unchanged)
