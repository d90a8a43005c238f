"""`gridline import DIR`: load regions, members, addresses, residents and rosters from CSV.

Files are loaded in dependency order, each in its own transaction: every row is
validated against the database (which holds what earlier files of this import
wrote) and the file is written only when none of its rows is bad. A bad file
does not stop the others: later files are still validated against the database,
and written when they are good, because operators fix the one bad file and
re-run rather than start over. Once every file has been tried, the errors of all
of them are raised together (`ImportDirFailed`, an `ImportFailed`).

Rows are matched to existing ones by natural key (region code; member phone +
unit; address text + grid; resident phone; shift unit + phone + start) and
written in bulk (see `app.importer.csv_rows.upsert`), so 370,000 residents cost a
handful of queries. Nothing is deleted: a row missing from a file stays as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import unit_of_work
from app.directory.offices import CITY_CODE
from app.errors import ImportFailed
from app.importer.csv_rows import (
    CsvRow,
    FileCounts,
    FileErrors,
    Progress,
    RegionInfo,
    StepProgress,
    clean,
    first_seen,
    phone_in,
    read_csv,
    region_named,
    regions_by_code,
    required,
    upsert,
)
from app.inbound.placement import gazetteer
from app.models.directory import REGION_LEVELS, Address, Member, Region, Resident, Shift
from app.runtime import Runtime
from routing.address import AddressMatch, normalize_address, strip_unit_and_room
from routing.gazetteer import Gazetteer
from routing.roster import InvalidShift, ShiftSpec, validate_shift
from sms.phones import mask_phone

__all__ = ["FILES", "FileCounts", "ImportDirFailed", "ImportReport", "import_dir"]

# The files in load order, with the columns their header must have. `tags` and
# `rrule` may be left out of the header; other columns are ignored.
FILES: dict[str, tuple[str, ...]] = {
    "regions.csv": ("code", "name", "level", "parent_code"),
    "members.csv": ("phone", "name", "role", "unit_code"),
    "addresses.csv": ("address", "grid_code"),
    "residents.csv": ("phone", "name", "address", "grid_code"),
    "roster.csv": ("unit_code", "phone", "starts_at", "ends_at"),
}
# The levels a region's parent may have. Always a strictly higher level, so the
# tree cannot have cycles and loading level by level is a topological order.
PARENT_LEVELS: dict[str, tuple[str, ...]] = {
    "county": (),
    "town": ("county",),
    "community": ("town",),
    "grid": ("community", "town"),
}
MEMBER_UNIT_LEVELS = ("grid", "town", "county")


@dataclass
class ImportReport:
    """What an import did: counts per written file, and the errors of the others."""

    files: dict[str, FileCounts] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{name}: {counts}" for name, counts in self.files.items()]
        lines += [f"{name}: not written (errors)" for name in self.failed]
        return "\n".join(lines) if lines else "nothing imported"


class ImportDirFailed(ImportFailed):
    """Some files had errors; `report` says what the good files wrote."""

    def __init__(self, errors: list[str], report: ImportReport) -> None:
        super().__init__(errors)
        self.report = report


# Validates a file's rows, collecting errors; writes them only if there are none.
_Loader = Callable[[Session, Runtime, list[CsvRow], FileErrors, StepProgress], FileCounts]


def import_dir(rt: Runtime, folder: Path, *, progress: Progress | None = None) -> ImportReport:
    """Import the CSV files present in `folder`, in dependency order.

    Each file is written in its own transaction, or not at all if any row is
    bad. Good files are committed even when another file fails; then
    `ImportDirFailed` is raised with every `file:line: reason` and the report.
    """
    say: Progress = progress or (lambda _line: None)
    present = [name for name in FILES if (folder / name).is_file()]
    if not present and not (folder / "grids.geojson").is_file():
        raise ImportFailed([f"{folder}: no import files (expected any of {', '.join(FILES)})"])
    loaders: dict[str, _Loader] = {
        "regions.csv": _load_regions,
        "members.csv": _load_members,
        "addresses.csv": _load_addresses,
        "residents.csv": _load_residents,
        "roster.csv": _load_roster,
    }
    report = ImportReport()
    for name in present:
        errors = FileErrors(name)
        rows = read_csv(folder / name, FILES[name], errors)
        counts = FileCounts()
        if rows is not None:
            say(f"{name}: {len(rows)} rows")
            with unit_of_work(rt.sessions) as session:
                counts = loaders[name](session, rt, rows, errors, StepProgress(name, say))
                if errors:
                    # Loaders write only when they found no error; this is the backstop.
                    session.rollback()
        if errors:
            report.failed.append(name)
            report.errors.extend(errors.render())
            say(f"{name}: {len(errors)} errors, nothing written")
        else:
            report.files[name] = counts
            say(f"{name}: {counts}")
    if (folder / "grids.geojson").is_file():
        from app.importer.geo import import_into  # grid boundaries, after regions.csv

        import_into(rt, folder, report, say)
    if report.errors:
        raise ImportDirFailed(report.errors, report)
    return report


# --- regions.csv ---------------------------------------------------------------------


@dataclass(frozen=True)
class _RegionRow:
    row: CsvRow
    code: str
    name: str
    level: str
    parent: str


def _load_regions(
    session: Session, rt: Runtime, rows: list[CsvRow], errors: FileErrors, progress: StepProgress
) -> FileCounts:
    db = {
        code: (id_, level)
        for code, id_, level in session.execute(select(Region.code, Region.id, Region.level))
    }
    seen: dict[Any, int] = {}
    parsed: list[_RegionRow] = []
    for row in rows:
        code, parent = clean(row["code"]), clean(row["parent_code"])
        level = clean(row["level"]).lower()
        ok = required(row, ("code", "name", "level"), errors)
        if level and level not in PARENT_LEVELS:
            errors.add(row.line, f"unknown level '{level}' (county, town, community or grid)")
            ok = False
        elif level == "county" and parent:
            errors.add(row.line, f"a county has no parent (parent_code is '{parent}')")
            ok = False
        elif level and level != "county" and not parent:
            errors.add(row.line, f"a {level} needs a parent_code")
            ok = False
        if code.upper() == CITY_CODE:
            errors.add(row.line, f"code '{code}' is reserved for the city office")
            ok = False
        if code and not first_seen(seen, code, row, f"code '{code}'", errors):
            ok = False
        if ok:
            parsed.append(_RegionRow(row, code, row["name"], level, parent))
    # A parent may come later in the file, or be in the database already; the
    # file's level wins, as that is what the database will hold.
    levels = {code: level for code, (_id, level) in db.items()}
    levels.update({r.code: r.level for r in parsed})
    # A parent whose own row is bad has its error already: no second one here.
    file_codes = {clean(row["code"]) for row in rows}
    bad = file_codes - {r.code for r in parsed}
    for r in parsed:
        if not r.parent or r.parent in bad:
            continue
        if r.parent not in levels:
            errors.add(r.row.line, f"unknown parent_code '{r.parent}'")
        elif levels[r.parent] not in PARENT_LEVELS[r.level]:
            allowed = " or ".join(PARENT_LEVELS[r.level])
            errors.add(
                r.row.line,
                f"parent_code '{r.parent}' is a {levels[r.parent]}; "
                f"a {r.level}'s parent must be a {allowed}",
            )
    _check_level_changes(session, parsed, db, file_codes, errors)
    if errors:
        return FileCounts()
    ids = {code: id_ for code, (id_, _level) in db.items()}
    counts = FileCounts()
    for level in REGION_LEVELS:
        records = [
            {
                "code": r.code,
                "name": r.name,
                "level": r.level,
                "parent_id": ids[r.parent] if r.parent else None,
            }
            for r in parsed
            if r.level == level
        ]
        counts.add(
            upsert(
                session,
                Region,
                records,
                key=("code",),
                compare=("name", "level", "parent_id"),
                now=rt.clock(),
                progress=progress,
            )
        )
        # The new rows' ids, for the parent_id of the next level down.
        new_ids = session.execute(select(Region.code, Region.id).where(Region.level == level))
        ids.update({code: id_ for code, id_ in new_ids})
    return counts


def _check_level_changes(
    session: Session,
    parsed: list[_RegionRow],
    db: dict[str, tuple[int, str]],
    file_codes: set[str],
    errors: FileErrors,
) -> None:
    """A region that changes level must not strand what hangs on it in the database.

    Level changes are rare, so a few queries for each are fine.
    """
    for r in parsed:
        old = db.get(r.code)
        if old is None or old[1] == r.level:
            continue
        region_id, old_level = old
        why = f"'{r.code}' cannot become a {r.level}"
        children = session.execute(
            select(Region.code, Region.level).where(Region.parent_id == region_id)
        )
        for child, child_level in children:
            # A child listed in the file was checked against its new parent above.
            if child not in file_codes and r.level not in PARENT_LEVELS[child_level]:
                errors.add(
                    r.row.line,
                    f"{why}: its {child_level} '{child}' needs a "
                    f"{' or '.join(PARENT_LEVELS[child_level])} as parent",
                )
        if old_level == "grid":
            placed = _count(session, region_id, Address.grid_id, Resident.grid_id)
            if placed:
                errors.add(r.row.line, f"{why}: {placed} addresses or residents belong to the grid")
        if old_level in MEMBER_UNIT_LEVELS and r.level not in MEMBER_UNIT_LEVELS:
            staffed = _count(session, region_id, Member.unit_id, Shift.unit_id)
            if staffed:
                errors.add(r.row.line, f"{why}: {staffed} members or shifts belong to it")


def _count(session: Session, region_id: int, *columns: Any) -> int:
    return sum(session.scalar(select(func.count()).where(c == region_id)) or 0 for c in columns)


# --- members.csv ---------------------------------------------------------------------


def _load_members(
    session: Session, rt: Runtime, rows: list[CsvRow], errors: FileErrors, progress: StepProgress
) -> FileCounts:
    regions = regions_by_code(session)
    seen: dict[Any, int] = {}
    records: list[dict[str, Any]] = []
    for row in rows:
        phone = phone_in(row, "phone", rt.settings.default_region, errors)
        ok = required(row, ("name", "role"), errors)
        unit = region_named(row, "unit_code", regions, MEMBER_UNIT_LEVELS, errors)
        if not ok or phone is None or unit is None:
            continue
        if not first_seen(seen, (phone, unit.id), row, "member (same phone and unit)", errors):
            continue
        records.append(
            {
                "phone": phone,
                "unit_id": unit.id,
                "name": row["name"],
                "role": clean(row["role"]).lower(),
                "active": True,
            }
        )
    if errors:
        return FileCounts()
    # Listing a member again re-activates them; members missing from the file are kept.
    return upsert(
        session,
        Member,
        records,
        key=("phone", "unit_id"),
        compare=("name", "role", "active"),
        now=rt.clock(),
        progress=progress,
    )


# --- addresses.csv -------------------------------------------------------------------


def _load_addresses(
    session: Session, rt: Runtime, rows: list[CsvRow], errors: FileErrors, progress: StepProgress
) -> FileCounts:
    regions = regions_by_code(session)
    seen: dict[Any, int] = {}
    records: list[dict[str, Any]] = []
    for row in rows:
        address = row["address"]
        ok = required(row, ("address",), errors)
        normalized = normalize_address(address)
        if address and not normalized:
            errors.add(row.line, f"address '{address}' has nothing to match on")
            ok = False
        grid = region_named(row, "grid_code", regions, ("grid",), errors)
        if not ok or grid is None:
            continue
        if not first_seen(seen, (address, grid.id), row, "address in the same grid", errors):
            continue
        records.append({"address": address, "grid_id": grid.id, "normalized": normalized})
    if errors:
        return FileCounts()
    return upsert(
        session,
        Address,
        records,
        key=("address", "grid_id"),
        compare=("normalized",),
        now=rt.clock(),
        progress=progress,
    )


# --- residents.csv -------------------------------------------------------------------


def _tags(text: str) -> str:
    """`elderly; Low_Income；elderly` → `elderly;low_income` (full-width `；` too)."""
    parts = (clean(t).lower() for t in clean(text).split(";"))
    return ";".join(dict.fromkeys(t for t in parts if t))


def _load_residents(
    session: Session, rt: Runtime, rows: list[CsvRow], errors: FileErrors, progress: StepProgress
) -> FileCounts:
    regions = regions_by_code(session)
    # The gazetteer is loaded once, and only when some row needs it; residents of
    # one building differ only by unit and room, so each building is matched once.
    index: Gazetteer | None = None
    matches: dict[str, AddressMatch] = {}
    seen: dict[Any, int] = {}
    records: list[dict[str, Any]] = []
    for done, row in enumerate(rows, 1):
        progress.checked(done, len(rows))
        phone = phone_in(row, "phone", rt.settings.default_region, errors)
        address = row["address"]
        grid: RegionInfo | None = None
        if row["grid_code"]:
            grid = region_named(row, "grid_code", regions, ("grid",), errors)
        elif not address:
            errors.add(row.line, "grid_code and address are both empty")
        else:
            place = strip_unit_and_room(normalize_address(address))
            if place not in matches:
                if index is None:
                    index = gazetteer(session, rt)
                matches[place] = index.match(address)
            grid = _derived_grid(matches[place], address, row, regions, errors)
        if phone is None or grid is None:
            continue
        if not first_seen(seen, phone, row, "phone", errors):
            continue
        records.append(
            {
                "phone": phone,
                "name": row["name"] or None,
                "address": address or None,
                "grid_id": grid.id,
                "tags": _tags(row["tags"]),
                "address_source": "import" if address else None,
            }
        )
    if errors:
        return FileCounts()
    # opted_out and address_confirmed_at are the resident's own doing: never reset here.
    return upsert(
        session,
        Resident,
        records,
        key=("phone",),
        compare=("name", "address", "grid_id", "tags", "address_source"),
        now=rt.clock(),
        progress=progress,
    )


def _derived_grid(
    match: AddressMatch,
    address: str,
    row: CsvRow,
    regions: dict[str, RegionInfo],
    errors: FileErrors,
) -> RegionInfo | None:
    grid = regions.get(match.grid) if match.grid else None
    if grid is not None:
        return grid
    if match.ambiguous:
        grids = ", ".join(sorted(c.grid for c in match.candidates))
        errors.add(
            row.line,
            f"address '{address}' matches several grids ({grids}): "
            "name the town in the address or fill grid_code",
        )
    else:
        errors.add(row.line, f"address '{address}' matches no grid in the gazetteer")
    return None


# --- roster.csv ----------------------------------------------------------------------


def _local_time(row: CsvRow, column: str, tz: ZoneInfo, errors: FileErrors) -> datetime | None:
    """An ISO-8601 time as naive wall-clock time in `tz`; an aware time is converted."""
    raw = row[column]
    if not raw:
        errors.add(row.line, f"{column} is empty")
        return None
    try:
        value = datetime.fromisoformat(clean(raw))
    except ValueError:
        errors.add(row.line, f"{column} '{raw}' is not an ISO-8601 time (e.g. 2026-01-05T08:30)")
        return None
    if value.tzinfo is not None:
        value = value.astimezone(tz).replace(tzinfo=None)
    return value


def _load_roster(
    session: Session, rt: Runtime, rows: list[CsvRow], errors: FileErrors, progress: StepProgress
) -> FileCounts:
    regions = regions_by_code(session)
    active = select(Member.phone, Member.unit_id).where(Member.active.is_(True))
    members = {(phone, unit_id) for phone, unit_id in session.execute(active)}
    tz = rt.settings.tz
    seen: dict[Any, int] = {}
    records: list[dict[str, Any]] = []
    for row in rows:
        unit = region_named(row, "unit_code", regions, REGION_LEVELS, errors)
        phone = phone_in(row, "phone", rt.settings.default_region, errors)
        starts_at = _local_time(row, "starts_at", tz, errors)
        ends_at = _local_time(row, "ends_at", tz, errors)
        rrule = row["rrule"] or None
        if unit is not None and phone is not None and (phone, unit.id) not in members:
            errors.add(
                row.line,
                f"phone '{mask_phone(phone)}' is not a member of unit '{clean(row['unit_code'])}'",
            )
            continue
        if unit is None or phone is None or starts_at is None or ends_at is None:
            continue
        try:
            validate_shift(ShiftSpec(phone, starts_at, ends_at, rrule), tz=tz)
        except InvalidShift as exc:
            errors.add(row.line, str(exc))
            continue
        key = (unit.id, phone, starts_at)
        if not first_seen(seen, key, row, "shift (same unit, phone and start)", errors):
            continue
        records.append(
            {
                "unit_id": unit.id,
                "phone": phone,
                "starts_at": starts_at,
                "ends_at": ends_at,
                "rrule": rrule,
            }
        )
    if errors:
        return FileCounts()
    return upsert(
        session,
        Shift,
        records,
        key=("unit_id", "phone", "starts_at"),
        compare=("ends_at", "rrule"),
        now=rt.clock(),
        progress=progress,
    )
