"""`/console/duty`: who is on duty now and next in each grid of the office's
area, the roster gaps of the next days, and the team phones that our SMS did
not reach lately. `?unit=CODE` narrows it to a county or town of the area;
`days` is the look-back for undelivered SMS (default 7)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from fastapi import Request
from fastapi.responses import Response

from app.console.areas import pick_unit, trail, visible_tree
from app.console.auth import StaffDep
from app.console.duty_board import duty_board, undelivered_phones
from app.console.render import render
from app.console.router import router
from app.deps import RuntimeDep, SessionDep
from app.errors import Unprocessable

GAP_DAYS = 7
MAX_LOOKBACK = 90
# Past this many grids the page shows the towns, each a link to its own page.
MAX_GRIDS = 400


def span(start: datetime, end: datetime) -> str:
    """`11-28 18:00–24:00`, `11-28 18:00–11-29 08:30` (local wall clock)."""
    first = f"{start:%m-%d %H:%M}"
    if end.date() == start.date():
        return f"{first}–{end:%H:%M}"
    if end == datetime.combine(start.date() + timedelta(days=1), time()):
        return f"{first}–24:00"
    return f"{first}–{end:%m-%d %H:%M}"


def _days(text: str | None) -> int:
    if not text:
        return 7
    if (
        not text.isascii()
        or not text.isdigit()
        or len(text) > 2
        or not 1 <= int(text) <= MAX_LOOKBACK
    ):
        raise Unprocessable(f"`days` must be a whole number from 1 to {MAX_LOOKBACK}, not {text!r}")
    return int(text)


@router.get("/duty")
def duty_page(request: Request, ctx: StaffDep, session: SessionDep, rt: RuntimeDep) -> Response:
    days = _days(request.query_params.get("days"))
    tree = visible_tree(session, ctx.office)
    unit = pick_unit(tree, ctx.office, request.query_params.get("unit") or None)
    now, tz = rt.clock(), rt.settings.tz
    grids_in_scope = tree.below(unit, "grid")
    too_many = len(grids_in_scope) > MAX_GRIDS
    offices, grids = duty_board(
        session, tree, unit, now=now, tz=tz, days=GAP_DAYS, with_grids=not too_many
    )
    scope = [*(o.unit for o in offices), *grids_in_scope]
    undelivered = undelivered_phones(session, scope, since=now - timedelta(days=days))
    return render(
        request,
        ctx,
        "duty.html",
        nav_active="duty",
        unit=unit,
        unit_name=unit.name or ctx.office.name,
        crumbs=trail(tree, ctx.office, unit),
        offices=offices,
        grids=grids,
        too_many=too_many,
        grid_count=len(grids_in_scope),
        gap_grids=[g for g in grids if g.gaps],
        unrostered=[g for g in grids if not g.rostered],
        undelivered=undelivered,
        days=days,
        gap_days=GAP_DAYS,
        local_now=now.astimezone(tz),
        span=span,
    )
