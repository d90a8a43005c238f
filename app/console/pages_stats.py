"""`/console/stats`: the office's figures for a period, with charts, tables and
CSV downloads; printed, it is the monthly report.

The period is in the URL: `month=2026-11`, or `from=2026-11-01&to=2026-11-30`
(local dates, inclusive); the last 30 days by default. Each chart's numbers are
in the table under it and in `/console/stats.csv?table=<name>&…`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.console.areas import office_unit, visible_tree
from app.console.auth import StaffContext, StaffDep
from app.console.console_stats import Period, StatsReport, parse_period, stats_report
from app.console.csv_out import csv_response
from app.console.render import render, translator
from app.console.router import router
from app.console.svg import Series, Svg, hbar_chart, line_chart
from app.deps import RuntimeDep, SessionDep
from app.errors import Unprocessable
from app.runtime import Runtime

TABLES = ("summary", "daily", "units", "satisfaction", "categories")


@dataclass(frozen=True)
class Table:
    name: str
    caption: str
    header: list[str]
    rows: list[list[Any]]  # what the page and the CSV show
    numeric: tuple[int, ...] = ()  # columns aligned right


def minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def percent(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 1)


def _v(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def tables(report: StatsReport, _: Callable[[str], str]) -> dict[str, Table]:
    t = report.total
    claim, resolve = t["time_to_claim"], t["time_to_resolve"]
    c50, c90 = minutes(claim["median_seconds"]), minutes(claim["p90_seconds"])
    r50, r90 = hours(resolve["median_seconds"]), hours(resolve["p90_seconds"])
    summary_rows = [
        ["new", _("New cases"), t["cases"]],
        ["open", _("Still open"), report.open],
        ["overdue", _("Overdue"), t["overdue"]],
        ["solved", _("Solved"), t["solved"]],
        ["resolution_rate", _("Resolution rate (%)"), _v(percent(t["resolution_rate"]))],
        ["claim_median", _("Median time to claim (minutes)"), _v(c50)],
        ["claim_p90", _("90th percentile time to claim (minutes)"), _v(c90)],
        ["resolve_median", _("Median time to resolve (hours)"), _v(r50)],
        ["resolve_p90", _("90th percentile time to resolve (hours)"), _v(r90)],
        ["rated", _("Rated"), t["rated"]],
        ["satisfaction_rate", _("Satisfied (%)"), _v(percent(t["satisfaction_rate"]))],
    ]
    unit_label = _("Grid") if report.by_unit_level == "grid" else _("Town")
    units = []
    for g in report.by_unit:
        rate = round(g.solved / g.cases * 100, 1) if g.cases else None
        units.append(
            [
                g.unit.code if g.unit else "",
                g.unit.name if g.unit else _("(not placed)"),
                g.cases,
                g.solved,
                _v(rate),
                _v(hours(g.resolve_median)),
                _v(hours(g.resolve_p90)),
            ]
        )
    return {
        "summary": Table(
            "summary", _("Key figures"), ["key", _("Figure"), _("Value")], summary_rows, (2,)
        ),
        "daily": Table(
            "daily",
            _("New and resolved cases per day"),
            [_("Day"), _("New"), _("Resolved")],
            [[d.isoformat(), new, done] for d, new, done in report.daily],
            (1, 2),
        ),
        "units": Table(
            "units",
            _("Resolution time by {unit}").format(unit=unit_label.lower()),
            [
                _("Code"),
                unit_label,
                _("Cases"),
                _("Solved"),
                _("Resolution rate (%)"),
                _("Median hours to resolve"),
                _("90th percentile hours to resolve"),
            ],
            units,
            (2, 3, 4, 5, 6),
        ),
        "satisfaction": Table(
            "satisfaction",
            _("Satisfaction by week"),
            [_("From"), _("To"), _("Rated"), _("Satisfied"), _("Satisfied (%)")],
            [
                [b.first.isoformat(), b.last.isoformat(), b.rated, b.satisfied, _v(percent(b.rate))]
                for b in report.satisfaction
            ],
            (2, 3, 4),
        ),
        "categories": Table(
            "categories",
            _("Top categories"),
            [_("Category"), _("Cases"), _("Share (%)")],
            [
                [
                    c if c is not None else _("uncategorised"),
                    n,
                    _v(round(n / t["cases"] * 100, 1) if t["cases"] else None),
                ]
                for c, n in report.categories
            ],
            (1, 2),
        ),
    }


def _num(text: object) -> float | None:
    try:
        return float(str(text))
    except ValueError:
        return None


def charts(report: StatsReport, tbl: dict[str, Table], _: Callable[[str], str]) -> dict[str, Svg]:
    days = report.daily
    out: dict[str, Svg] = {
        "daily": line_chart(
            [d.strftime("%m-%d") for d, _n, _r in days],
            [
                Series(_("New"), [float(n) for _d, n, _r in days]),
                Series(_("Resolved"), [float(r) for _d, _n, r in days]),
            ],
            title=tbl["daily"].caption,
            desc=_("A line per series, one point per day; the table below has the numbers."),
            id_prefix="chart-daily",
        ),
    }
    units = [row for row in tbl["units"].rows if _num(row[5]) is not None]
    out["units"] = hbar_chart(
        [str(row[1]) for row in units],
        [_num(row[5]) for row in units],
        title=_("Median hours to resolve"),
        desc=_("One bar per unit; the table below has the numbers, with the 90th percentile."),
        id_prefix="chart-units",
        value_fmt=lambda v: _("{n} h").format(n=f"{v:g}"),
    )
    weeks = tbl["satisfaction"].rows
    out["satisfaction"] = line_chart(
        [f"{row[0][5:]}" for row in weeks],
        [Series(_("Satisfied (%)"), [_num(row[4]) for row in weeks])],
        title=tbl["satisfaction"].caption,
        desc=_("Share of rated cases whose resident was satisfied, by week opened."),
        id_prefix="chart-satisfaction",
        y_max=100,
        value_fmt=lambda v: f"{v:g}%",
    )
    cats = tbl["categories"].rows
    out["categories"] = hbar_chart(
        [str(row[0]) for row in cats],
        [float(row[1]) for row in cats],
        title=tbl["categories"].caption,
        desc=_("Cases per category, most first; the table below has the numbers."),
        id_prefix="chart-categories",
    )
    return out


def _report(
    request: Request, ctx: StaffContext, session: Session, rt: Runtime
) -> tuple[Period, StatsReport]:
    q = request.query_params
    now, tz = rt.clock(), rt.settings.tz
    period = parse_period(q.get("from"), q.get("to"), q.get("month"), now=now, tz=tz)
    tree = visible_tree(session, ctx.office)
    report = stats_report(
        session, ctx.office, tree, office_unit(tree, ctx.office), period=period, now=now, tz=tz
    )
    return period, report


def period_params(period: Period) -> dict[str, str]:
    month = period.whole_month
    if month:
        return {"month": month}
    return {"from": period.first.isoformat(), "to": period.last.isoformat()}


def month_before(day: date) -> str:
    return f"{(day.replace(day=1) - timedelta(days=1)):%Y-%m}"


@router.get("/stats")
def stats_page(request: Request, ctx: StaffDep, session: SessionDep, rt: RuntimeDep) -> Response:
    _ = translator(ctx.lang)
    period, report = _report(request, ctx, session, rt)
    tbl = tables(report, _)
    params = period_params(period)
    today = rt.clock().astimezone(rt.settings.tz).date()
    month = period.whole_month
    if month:
        heading = _("{office}: monthly report, {month}").format(office=ctx.office.name, month=month)
    else:
        heading = _("{office}: report, {first} to {last}").format(
            office=ctx.office.name, first=period.first, last=period.last
        )
    return render(
        request,
        ctx,
        "stats.html",
        nav_active="stats",
        period=period,
        report=report,
        tables=tbl,
        charts=charts(report, tbl, _),
        heading=heading,
        csv_href=lambda name: "/console/stats.csv?" + urlencode({"table": name, **params}),
        this_month=f"{today:%Y-%m}",
        last_month=month_before(today),
    )


@router.get("/stats.csv")
def stats_csv(request: Request, ctx: StaffDep, session: SessionDep, rt: RuntimeDep) -> Response:
    name = request.query_params.get("table") or ""
    if name not in TABLES:
        raise Unprocessable(f"`table` must be one of {', '.join(TABLES)}, not {name!r}")
    _ = translator(ctx.lang)
    period, report = _report(request, ctx, session, rt)
    table = tables(report, _)[name]
    filename = f"{name}-{ctx.office.code}-{period.first}-{period.last}.csv"
    return csv_response(filename, table.header, table.rows)
