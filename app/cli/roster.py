"""`gridline roster …`: who is on duty, one-off overrides and leave."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from sqlalchemy import select

from app.db import unit_of_work
from app.directory import lookups as directory
from app.directory import rosters
from app.models.directory import Member, MemberLeave, Region, RosterOverride
from app.runtime import Runtime
from routing.duty import describe_gaps
from sms.phones import InvalidPhone, normalize_phone

roster_cli = typer.Typer(help="Duty rosters.", no_args_is_help=True)


def _runtime() -> Runtime:
    from app.cli.common import build_runtime, load_settings

    return build_runtime(load_settings())


def _local_time(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        typer.echo(f"{option}: not an ISO-8601 time: {text!r}", err=True)
        raise typer.Exit(2) from exc
    return moment.replace(tzinfo=None) if moment.tzinfo is None else moment


def _phone(rt: Runtime, text: str, option: str) -> str:
    try:
        return normalize_phone(text, region=rt.settings.default_region)
    except InvalidPhone as exc:
        typer.echo(f"{option}: {exc}", err=True)
        raise typer.Exit(2) from exc


def _unit(session: object, code: str) -> Region:
    unit = directory.region_by_code(session, code)  # type: ignore[arg-type]
    if unit is None:
        typer.echo(f"no unit {code!r}", err=True)
        raise typer.Exit(1)
    return unit


@roster_cli.command("show")
def show(
    unit_code: Annotated[str, typer.Argument(metavar="UNIT", help="A grid, town or county code.")],
    at: Annotated[
        str | None, typer.Option("--at", help="Local time (ISO-8601); default: now.")
    ] = None,
) -> None:
    """Who of UNIT is on duty at a moment, why, and today's roster gaps."""
    rt = _runtime()
    tz = rt.settings.tz
    try:
        moment = rt.clock() if at is None else _local_time(at, "--at")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        with rt.sessions() as session:
            unit = _unit(session, unit_code)
            answer = rosters.duty(session, unit, now=moment, tz=tz)
            members, from_roster = rosters.on_duty(session, unit, now=moment, tz=tz)
            local = moment.astimezone(tz)
            typer.echo(f"{unit.code} {unit.name} at {local:%Y-%m-%d %H:%M} ({tz.key})")
            if from_roster:
                typer.echo("on duty (roster):")
            else:
                typer.echo("nobody rostered: the whole team is on duty (fallback):")
            for member in members:
                why = answer.why.get(member.phone, "team")
                typer.echo(f"  {member.name}  {member.phone}  {why}")
            away = sorted(p for p, why in answer.why.items() if why == "on leave")
            if away:
                typer.echo(f"on leave: {', '.join(away)}")
            found = rosters.grid_gaps(session, unit, day=local.date(), tz=tz)
            typer.echo(f"gaps on {local.date()}: {describe_gaps(found) or 'none'}")
    finally:
        rt.close()


@roster_cli.command("override")
def override(
    unit_code: Annotated[str, typer.Argument(metavar="UNIT")],
    phone: Annotated[str, typer.Option("--phone", help="Who is on duty instead.")],
    starts: Annotated[str, typer.Option("--from", help="Local start (ISO-8601).")],
    ends: Annotated[str, typer.Option("--to", help="Local end (ISO-8601).")],
    replaces: Annotated[
        str | None, typer.Option("--replaces", help="Whose shift it replaces.")
    ] = None,
    reason: Annotated[str, typer.Option("--reason")] = "",
) -> None:
    """A one-off change: PHONE is on duty in UNIT from --from to --to."""
    rt = _runtime()
    try:
        who = _phone(rt, phone, "--phone")
        instead = _phone(rt, replaces, "--replaces") if replaces else None
        begin, end = _local_time(starts, "--from"), _local_time(ends, "--to")
        if end <= begin:
            typer.echo("--to must be after --from", err=True)
            raise typer.Exit(2)
        with unit_of_work(rt.sessions) as session:
            unit = _unit(session, unit_code)
            member = session.scalar(
                select(Member.id).where(Member.unit_id == unit.id, Member.phone == who)
            )
            if member is None:
                typer.echo(f"{who} is not a member of {unit.code}", err=True)
                raise typer.Exit(1)
            session.add(
                RosterOverride(
                    unit_id=unit.id,
                    phone=who,
                    replaces=instead,
                    starts_at=begin,
                    ends_at=end,
                    reason=reason,
                    created_at=rt.clock(),
                )
            )
        typer.echo(f"override recorded for {unit_code}")
    finally:
        rt.close()


@roster_cli.command("leave")
def leave(
    phone: Annotated[str, typer.Option("--phone")],
    starts: Annotated[str, typer.Option("--from", help="Local start (ISO-8601).")],
    ends: Annotated[str, typer.Option("--to", help="Local end (ISO-8601).")],
    reason: Annotated[str, typer.Option("--reason")] = "",
) -> None:
    """A member's leave: off every roster (and every fallback) in that time."""
    rt = _runtime()
    try:
        who = _phone(rt, phone, "--phone")
        begin, end = _local_time(starts, "--from"), _local_time(ends, "--to")
        if end <= begin:
            typer.echo("--to must be after --from", err=True)
            raise typer.Exit(2)
        with unit_of_work(rt.sessions) as session:
            session.add(
                MemberLeave(
                    phone=who, starts_at=begin, ends_at=end, reason=reason, created_at=rt.clock()
                )
            )
        typer.echo("leave recorded")
    finally:
        rt.close()
