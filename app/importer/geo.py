"""`grids.geojson`: the grids' boundaries, for placing a shared location.

A FeatureCollection; each feature's `properties.code` is a grid code and its
geometry the grid's boundary (Polygon or MultiPolygon, `[longitude, latitude]`).
Like the CSV files it is written whole or not at all: every bad feature is
reported as `grids.geojson:feature N: reason` (N counts from 1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.db import unit_of_work
from app.importer.csv_rows import FileCounts, Progress, StepProgress, clean, regions_by_code, upsert
from app.models.directory import GridShape
from app.runtime import Runtime
from routing.geo import InvalidGeometry, polygon

FILE = "grids.geojson"


def read_features(path: Path, errors: list[str]) -> list[tuple[int, str, dict[str, Any]]]:
    """(feature number, code, geometry) per good feature; problems go to `errors`."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        errors.append(f"{FILE}: not a UTF-8 JSON document ({exc})")
        return []
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        errors.append(f"{FILE}: not a GeoJSON FeatureCollection")
        return []
    features = data.get("features")
    if not isinstance(features, list):
        errors.append(f"{FILE}: 'features' is not a list")
        return []
    out: list[tuple[int, str, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for n, feature in enumerate(features, 1):
        where = f"{FILE}:feature {n}"
        props = feature.get("properties") if isinstance(feature, dict) else None
        code = clean(str(props.get("code") or "")) if isinstance(props, dict) else ""
        if not code:
            errors.append(f"{where}: properties.code is empty")
            continue
        geometry = feature.get("geometry")
        try:
            polygon(geometry)
        except InvalidGeometry as exc:
            errors.append(f"{where}: {code}: {exc}")
            continue
        if code in seen:
            errors.append(f"{where}: duplicate code '{code}' (first in feature {seen[code]})")
            continue
        seen[code] = n
        out.append((n, code, geometry))
    return out


def import_grids(rt: Runtime, folder: Path, *, progress: Progress) -> tuple[FileCounts, list[str]]:
    """Import `folder/grids.geojson` in its own transaction; (counts, errors)."""
    path = folder / FILE
    errors: list[str] = []
    features = read_features(path, errors)
    progress(f"{FILE}: {len(features)} features")
    with unit_of_work(rt.sessions) as session:
        regions = regions_by_code(session)
        records: list[dict[str, Any]] = []
        for n, code, geometry in features:
            info = regions.get(code)
            if info is None:
                errors.append(f"{FILE}:feature {n}: unknown grid code '{code}'")
                continue
            if info.level != "grid":
                errors.append(f"{FILE}:feature {n}: '{code}' is a {info.level}, not a grid")
                continue
            records.append({"grid_id": info.id, "geometry": geometry})
        if errors:
            session.rollback()
            return FileCounts(), errors
        counts = upsert(
            session,
            GridShape,
            records,
            key=("grid_id",),
            compare=("geometry",),
            now=rt.clock(),
            progress=StepProgress(FILE, progress),
        )
    return counts, errors


def import_into(rt: Runtime, folder: Path, report: Any, say: Progress) -> None:
    """Import the file and record the outcome in an `app.importer.files.ImportReport`."""
    counts, errors = import_grids(rt, folder, progress=say)
    if errors:
        report.failed.append(FILE)
        report.errors.extend(errors)
        say(f"{FILE}: {len(errors)} errors, nothing written")
    else:
        report.files[FILE] = counts
        say(f"{FILE}: {counts}")
