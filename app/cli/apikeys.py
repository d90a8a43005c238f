"""`gridline apikey …`: create, list and revoke the offices' API keys."""

from __future__ import annotations

from typing import Annotated

import typer

from app.db import unit_of_work
from app.directory.apikeys import create_key, list_keys, revoke_key
from app.errors import DomainError
from app.runtime import Runtime
from app.settings import Settings

apikey_cli = typer.Typer(help="Office API keys.", no_args_is_help=True)


def _runtime() -> Runtime:
    from app.cli.common import build_runtime, load_settings

    settings: Settings = load_settings()
    return build_runtime(settings)


def _fmt(value: object) -> str:
    return "-" if value is None else str(value)


@apikey_cli.command("create")
def create(
    office: Annotated[str, typer.Option("--office", help="A town or county code, or CITY.")],
    scope: Annotated[str, typer.Option("--scope", help="read (the default) or write.")] = "read",
) -> None:
    """Create a key for an office and print it once (only its hash is stored)."""
    rt = _runtime()
    try:
        with unit_of_work(rt.sessions) as session:
            row, key = create_key(session, office_code=office, scope=scope, now=rt.clock())
            prefix, office_code, key_scope = row.prefix, row.office_code, row.scope
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    finally:
        rt.close()
    typer.echo(f"API key {prefix} for office {office_code}, scope {key_scope}.")
    typer.echo("It is shown only this once; store it now:")
    typer.echo(key)


@apikey_cli.command("list")
def list_() -> None:
    """List the keys: prefix, office, scope, created, last used, revoked."""
    rt = _runtime()
    try:
        with unit_of_work(rt.sessions) as session:
            rows = [
                (k.prefix, k.office_code, k.scope, k.created_at, k.last_used_at, k.revoked_at)
                for k in list_keys(session)
            ]
    finally:
        rt.close()
    if not rows:
        typer.echo("(no API keys)")
        return
    typer.echo("prefix\toffice\tscope\tcreated\tlast_used\trevoked")
    for row in rows:
        typer.echo("\t".join(_fmt(v) for v in row))


@apikey_cli.command("revoke")
def revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix, e.g. gl_1a2b3c4d.")],
) -> None:
    """Revoke a key: it answers 401 from now on."""
    rt = _runtime()
    try:
        with unit_of_work(rt.sessions) as session:
            row = revoke_key(session, prefix=prefix, now=rt.clock())
            shown = (row.prefix, row.office_code)
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    finally:
        rt.close()
    typer.echo(f"revoked {shown[0]} ({shown[1]})")
