"""`gridline route "TEXT" [--from PHONE]`: the routing decision and its evidence, no case made."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from app.inbound.placement import place
from sms.phones import InvalidPhone, mask_phone, normalize_phone


def route(
    text: Annotated[str, typer.Argument(help="The resident's text.")],
    sender: Annotated[
        str | None, typer.Option("--from", help="The sender's phone (registered home).")
    ] = None,
    lat: Annotated[float | None, typer.Option("--lat", help="Shared latitude.")] = None,
    lon: Annotated[float | None, typer.Option("--lon", help="Shared longitude.")] = None,
) -> None:
    """Print how a text would be routed, and why, without creating a case."""
    from app.cli.common import build_runtime, load_settings

    settings = load_settings()
    phone = ""
    if sender:
        try:
            phone = normalize_phone(sender, region=settings.default_region)
        except InvalidPhone as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
    location = (lat, lon) if lat is not None and lon is not None else None
    rt = build_runtime(settings)
    try:
        with rt.sessions() as session:  # read only: nothing is committed
            placement = place(session, rt, phone=phone, text=text, location=location)
            grid = placement.grid.code if placement.grid is not None else None
            name = placement.grid.name if placement.grid is not None else None
    finally:
        rt.close()
    who = f" from {mask_phone(phone)}" if phone else ""
    if grid is not None:
        typer.echo(f"route{who} → {grid} {name} (by {placement.method})")
    else:
        template, params = placement.question(settings.locale)
        from sms.templates import render

        typer.echo(f"ask{who}: {render(template, settings.locale, **params)}")
    typer.echo(f"reason: {placement.summary}")
    typer.echo(json.dumps(placement.evidence, ensure_ascii=False, indent=2, default=str))
