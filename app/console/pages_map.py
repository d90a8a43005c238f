"""`/console/map`: the office's grids (or towns, counties) shaded by their cases.

`?unit=CODE` drills down county → town → grid (default: the office's own
unit); `metric` open | overdue | new, `days` the window (cases opened in the
last N local days), `per=households` divides by the registered households
(× 1,000). A grid links to the queue filtered to it (`/console?grid=CODE`).
The same numbers are in the ranked table beside the map and in `map.csv`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from app.console.areas import Unit, pick_unit, trail, visible_tree
from app.console.auth import StaffDep
from app.console.console_stats import (
    MAP_WINDOWS,
    METRICS,
    AreaFigures,
    MapFigures,
    map_figures,
    ranked,
    window_period,
)
from app.console.csv_out import csv_response
from app.console.map_shapes import paths_for, shaped_grid_ids
from app.console.render import render, translator
from app.console.router import router
from app.console.svg import Area, Svg, choropleth, colour_scale
from app.deps import RuntimeDep, SessionDep
from app.errors import Unprocessable


@dataclass(frozen=True)
class MapQuery:
    unit: str | None
    metric: str
    days: int
    per_households: bool

    def params(self, **changes: Any) -> str:
        values = {
            "unit": self.unit,
            "metric": self.metric,
            "days": self.days,
            "per": "households" if self.per_households else None,
        }
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def parse_query(request: Request) -> MapQuery:
    q = request.query_params
    metric = q.get("metric") or "open"
    if metric not in METRICS:
        raise Unprocessable(f"`metric` must be one of {', '.join(METRICS)}, not {metric!r}")
    days_text = q.get("days") or "30"
    if not days_text.isascii() or not days_text.isdigit() or len(days_text) > 3:
        raise Unprocessable(f"`days` must be a whole number of days, not {days_text!r}")
    per = q.get("per") or ""
    if per not in ("", "households"):
        raise Unprocessable(f"`per` may only be 'households', not {per!r}")
    return MapQuery(
        unit=q.get("unit") or None,
        metric=metric,
        days=int(days_text),
        per_households=per == "households",
    )


def metric_labels(_: Callable[[str], str]) -> dict[str, str]:
    return {
        "open": _("Open cases"),
        "overdue": _("Overdue cases"),
        "new": _("New cases"),
    }


def _fmt(per_households: bool) -> Callable[[float], str]:
    if per_households:
        return lambda v: f"{v:.2f}"
    return lambda v: str(int(v))


def area_href(query: MapQuery, level: str, code: str) -> str:
    if level == "grid":
        return "/console?" + urlencode({"grid": code})
    return "/console/map?" + query.params(unit=code)


def _load(
    request: Request, ctx: StaffDep, session: SessionDep, rt: RuntimeDep
) -> tuple[MapQuery, Any, Unit, MapFigures]:
    query = parse_query(request)
    now = rt.clock()
    period = window_period(query.days, now=now, tz=rt.settings.tz)
    tree = visible_tree(session, ctx.office)
    unit = pick_unit(tree, ctx.office, query.unit)
    data = map_figures(
        session,
        ctx.office,
        tree,
        unit,
        period=period,
        now=now,
        shaped=shaped_grid_ids(session),
    )
    return query, tree, unit, data


@router.get("/map")
def map_page(request: Request, ctx: StaffDep, session: SessionDep, rt: RuntimeDep) -> Response:
    _ = translator(ctx.lang)
    query, tree, unit, data = _load(request, ctx, session, rt)
    per = query.per_households
    fmt = _fmt(per)
    labels = metric_labels(_)
    level_names = {"county": _("County"), "town": _("Town"), "grid": _("Grid")}
    rows = ranked(data.areas, query.metric, per_households=per)
    values = [a.value(query.metric, per_households=per) for a in rows]
    scale = colour_scale(values, integer=not per)

    def label(a: AreaFigures) -> str:
        v = a.value(query.metric, per_households=per)
        shown = _("no households") if v is None else fmt(v)
        return f"{a.unit.name} ({a.unit.code}): {labels[query.metric]} {shown}"

    unit_name = unit.name or ctx.office.name
    metric_text = labels[query.metric] + (_(" per 1,000 households") if per else "")
    svg: Svg | None = None
    if any(a.has_shape for a in rows):
        projected = paths_for(session, rt, tree, unit)
        svg = choropleth(
            projected,
            [
                Area(
                    code=a.unit.code,
                    label=label(a),
                    value=a.value(query.metric, per_households=per),
                    href=area_href(query, data.level, a.unit.code),
                )
                for a in rows
            ],
            scale,
            title=_("Map of {unit}: {metric}").format(unit=unit_name, metric=metric_text),
            desc=_(
                "{metric} in the last {days} days, by {level}. "
                "The table below the map lists the same numbers."
            ).format(metric=metric_text, days=query.days, level=level_names[data.level]),
            legend_title=metric_text,
            no_data_label=_("no households registered") if per else None,
            fmt=fmt,
        )
    return render(
        request,
        ctx,
        "map.html",
        nav_active="map",
        query=query,
        unit=unit,
        unit_name=unit_name,
        crumbs=trail(tree, ctx.office, unit),
        data=data,
        rows=rows,
        svg=svg,
        fmt=fmt,
        metric_labels=labels,
        metric_text=metric_text,
        level_name=level_names[data.level],
        windows=MAP_WINDOWS,
        href=lambda code: area_href(query, data.level, code),
        crumb_href=lambda code: "/console/map?" + query.params(unit=code),
        csv_href="/console/map.csv?" + query.params(),
        no_shape=[a for a in rows if not a.has_shape],
    )


@router.get("/map.csv")
def map_csv(request: Request, ctx: StaffDep, session: SessionDep, rt: RuntimeDep) -> Response:
    _ = translator(ctx.lang)
    query, _tree, unit, data = _load(request, ctx, session, rt)
    per = query.per_households
    header = [
        _("Rank"),
        _("Code"),
        _("Name"),
        _("Open cases"),
        _("Overdue cases"),
        _("New cases"),
        _("Households"),
        _("Per 1,000 households"),
        _("Boundary"),
    ]
    out: list[list[object]] = []
    for i, a in enumerate(ranked(data.areas, query.metric, per_households=per), 1):
        rate = a.value(query.metric, per_households=True)
        out.append(
            [
                i,
                a.unit.code,
                a.unit.name,
                a.open,
                a.overdue,
                a.new,
                a.households,
                "" if rate is None else f"{rate:.2f}",
                _("yes") if a.has_shape else _("no"),
            ]
        )
    return csv_response(f"map-{unit.code}-{query.metric}-{query.days}d.csv", header, out)
