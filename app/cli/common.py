"""What every command group shares: settings and runtime built with a clear error."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from app.db import make_engine
from app.migrate import upgrade
from app.runtime import Runtime
from app.settings import Settings
from routing.policy import PolicyError


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        typer.echo(f"configuration error: {problems}", err=True)
        raise typer.Exit(2) from exc


def build_runtime(settings: Settings) -> Runtime:
    try:
        return Runtime.build(settings)
    except PolicyError as exc:
        typer.echo(f"policy error: {exc}", err=True)
        raise typer.Exit(2) from exc


def migrate(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
