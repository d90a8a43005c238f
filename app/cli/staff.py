"""`gridline staff …`: console accounts of office staff."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from app.console.accounts import (
    create_staff,
    disable_staff,
    list_staff,
    revoke_sessions,
    staff_by_username,
)
from app.db import unit_of_work
from app.errors import DomainError
from app.models.console import STAFF_ROLES
from app.runtime import Runtime

staff_cli = typer.Typer(help="Console accounts of office staff.", no_args_is_help=True)

PASSWORD_ENV = "GRIDLINE_STAFF_PASSWORD"


def _runtime() -> Runtime:
    from app.cli.common import build_runtime, load_settings

    return build_runtime(load_settings())


def _fail(exc: DomainError) -> typer.Exit:
    typer.echo(f"error: {exc.message}", err=True)
    return typer.Exit(1)


def _fmt(value: object) -> str:
    return "-" if value is None else str(value)


@staff_cli.command("create")
def create(
    office: Annotated[str, typer.Option("--office", help="A town or county code, or CITY.")],
    role: Annotated[str, typer.Option("--role", help=" | ".join(STAFF_ROLES))],
    username: Annotated[str, typer.Option("--username", help="The login name (a-z, 0-9, _.-).")],
) -> None:
    """Create a console account. The password is prompted for, or read from
    GRIDLINE_STAFF_PASSWORD (for scripts)."""
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    rt = _runtime()
    try:
        with unit_of_work(rt.sessions) as session:
            staff = create_staff(
                session,
                username=username,
                office_code=office,
                role=role,
                password=password,
                now=rt.clock(),
            )
            shown = (staff.username, staff.office_code, staff.role)
    except DomainError as exc:
        raise _fail(exc) from exc
    finally:
        rt.close()
    typer.echo(f"created {shown[0]} ({shown[2]}) for office {shown[1]}")


@staff_cli.command("list")
def list_() -> None:
    """List the accounts: username, office, role, active, created, last login."""
    rt = _runtime()
    try:
        with unit_of_work(rt.sessions) as session:
            rows = [
                (s.username, s.office_code, s.role, s.active, s.created_at, s.last_login_at)
                for s in list_staff(session)
            ]
    finally:
        rt.close()
    if not rows:
        typer.echo("(no staff accounts)")
        return
    typer.echo("username\toffice\trole\tactive\tcreated\tlast_login")
    for row in rows:
        typer.echo("\t".join(_fmt(v) for v in row))


@staff_cli.command("disable")
def disable(username: Annotated[str, typer.Argument(help="The login name.")]) -> None:
    """Disable an account: it cannot log in, and its sessions end at once."""
    rt = _runtime()
    try:
        with unit_of_work(rt.sessions) as session:
            staff = staff_by_username(session, username)
            disable_staff(session, staff, now=rt.clock())
    except DomainError as exc:
        raise _fail(exc) from exc
    finally:
        rt.close()
    typer.echo(f"disabled {username}; its sessions are ended")


@staff_cli.command("revoke-sessions")
def revoke(username: Annotated[str, typer.Argument(help="The login name.")]) -> None:
    """End every session of an account (it must log in again)."""
    rt = _runtime()
    try:
        with unit_of_work(rt.sessions) as session:
            staff = staff_by_username(session, username)
            count = revoke_sessions(session, staff, now=rt.clock())
    except DomainError as exc:
        raise _fail(exc) from exc
    finally:
        rt.close()
    typer.echo(f"ended {count} session(s) of {username}")
