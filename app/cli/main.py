"""The `gridline` command line."""

from __future__ import annotations

import signal
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from app.cli.apikeys import apikey_cli
from app.cli.common import build_runtime, load_settings, migrate
from app.cli.roster import roster_cli
from app.cli.route import route as route_command
from app.cli.staff import staff_cli
from app.db import unit_of_work
from app.delivery.gateways import build_gateway
from app.errors import ImportFailed
from app.logging_setup import configure_logging
from app.models.messages import OutboundMessage
from app.settings import Settings
from sms.phones import InvalidPhone, normalize_phone

cli = typer.Typer(help="Gridline: the grid hotline.", no_args_is_help=True, add_completion=False)
db_cli = typer.Typer(help="Database commands.", no_args_is_help=True)
sms_cli = typer.Typer(help="Local SMS tools.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(sms_cli, name="sms")
cli.add_typer(apikey_cli, name="apikey")
cli.add_typer(roster_cli, name="roster")
cli.add_typer(staff_cli, name="staff")
cli.command("route")(route_command)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Do not run the worker.")] = False,
) -> None:
    """Serve HTTP (webhooks, API); runs the background worker too unless --no-worker."""
    import uvicorn

    from app.web import create_app

    settings = load_settings()
    configure_logging(settings.log_level)
    build_runtime(settings).close()  # refuse a bad policy file before listening
    app = create_app(
        settings,
        start_worker=not no_worker,
        worker_process=settings.worker_process,
        freeze_heap=True,
    )
    uvicorn.run(app, host=host, port=port, log_config=None, proxy_headers=True)


@cli.command()
def worker() -> None:
    """Run the background worker alone (outbox sender, deadline scheduler)."""
    from app.sqlite_writer import set_background

    settings = load_settings()
    configure_logging(settings.log_level)
    set_background()  # on SQLite, webhooks and the API write first
    try:
        _run_worker(settings)
    finally:
        set_background(False)


def _run_worker(settings: Settings) -> None:
    from app.runtime import settle_heap
    from app.worker.loop import WorkerThread

    rt = build_runtime(settings)
    gateway = build_gateway(settings)
    settle_heap()
    thread = WorkerThread(rt, gateway)
    done = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    thread.start()
    typer.echo("worker running; Ctrl-C stops it")
    done.wait()
    thread.stop()
    gateway.close()
    rt.close()


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations."""
    settings = load_settings()
    migrate(settings)
    typer.echo("database is up to date")


@cli.command("import")
def import_(
    folder: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="Folder of CSV files.")
    ],
) -> None:
    """Load regions, members, addresses, residents and rosters from CSV files."""
    from app.importer.files import import_dir

    settings = load_settings()
    configure_logging(settings.log_level)
    rt = build_runtime(settings)
    try:
        report = import_dir(rt, folder, progress=typer.echo)
    except ImportFailed as exc:
        for line in exc.errors:
            typer.echo(line, err=True)
        raise typer.Exit(1) from exc
    finally:
        rt.close()
    typer.echo(f"import done: {len(report.files)} file(s)")


@sms_cli.command("inbound")
def sms_inbound(
    sender: Annotated[str, typer.Option("--from", help="The sender's phone.")],
    body: Annotated[str, typer.Option("--body", help="The text.")],
) -> None:
    """Inject an inbound SMS locally and print what the platform sent back."""
    from app.intake.store import InboundSms, store
    from app.models.messages import InboundMessage
    from app.worker.loop import run_once

    settings = load_settings()
    try:
        phone = normalize_phone(sender, region=settings.default_region)
    except InvalidPhone as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    rt = build_runtime(settings)
    gateway = build_gateway(settings)
    sid = "CLI" + uuid.uuid4().hex
    try:
        with unit_of_work(rt.sessions) as session:
            store(
                session,
                InboundSms(
                    message_sid=sid,
                    from_phone=phone,
                    to_phone=settings.hotline_number,
                    body=body,
                    received_at=rt.clock(),
                ),
            )
        run_once(rt, gateway)
        with rt.sessions() as session:
            message = session.scalar(
                select(InboundMessage).where(InboundMessage.message_sid == sid)
            )
            assert message is not None
            if message.status == "failed":
                typer.echo(f"processing failed: {message.error}", err=True)
                raise typer.Exit(1)
            sent = session.scalars(
                select(OutboundMessage)
                .where(OutboundMessage.inbound_id == message.id)
                .order_by(OutboundMessage.id)
            ).all()
            for row in sent:
                typer.echo(f"→ {row.to_phone} [{row.status}] {row.body}")
            if not sent:
                typer.echo("(nothing sent)")
    finally:
        gateway.close()
        rt.close()


@cli.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Set up only; do not serve.")
    ] = False,
    scale: Annotated[
        str, typer.Option(help="small (8 grids) or zhoushan (2,360 grids, 370,000 households).")
    ] = "small",
) -> None:
    """An embedded demo: SQLite, console SMS provider, a small generated city."""
    from app.importer.files import import_dir
    from app.importer.zhoushan_city import SCALES, write_demo

    if scale not in SCALES:
        raise typer.BadParameter(f"one of {', '.join(SCALES)}", param_hint="--scale")

    settings = load_settings(sms_provider="console", validate_signatures=False)
    configure_logging(settings.log_level)
    migrate(settings)
    rt = build_runtime(settings)
    try:
        with tempfile.TemporaryDirectory(prefix="gridline-demo-") as folder:
            phones = write_demo(Path(folder), scale, progress=typer.echo)
            import_dir(rt, Path(folder), progress=None if scale == "small" else typer.echo)
    except ImportFailed as exc:
        for line in exc.errors:
            typer.echo(line, err=True)
        raise typer.Exit(1) from exc
    finally:
        rt.close()
    typer.echo(_demo_instructions(settings, phones, host, port, serving=not no_serve))
    if not no_serve:
        import uvicorn

        from app.web import create_app

        app = create_app(settings, worker_process=settings.worker_process)  # as `serve`
        uvicorn.run(app, host=host, port=port, log_config=None)


def _demo_instructions(
    settings: Settings, phones: dict[str, str], host: str, port: int, *, serving: bool
) -> str:
    resident = phones.get("resident", "")
    stranger = phones.get("stranger", "")
    worker_phone = phones.get("worker", "")
    serve_line = (
        f"Serving on http://{host}:{port} (health: /healthz, API docs: /docs). In another terminal:"
        if serving
        else "Set up only (--no-serve)."
    )
    return f"""
Gridline demo — database {settings.database_url}, SMS printed to the log (phones masked).

{serve_line}
Text the hotline as a resident and as a grid worker (from this folder, with
the same GRIDLINE_DATABASE_URL; `make run` installs the command in .venv/bin):

  gridline sms inbound --from {resident} --body "楼道灯坏了，请帮忙修一下"
  gridline sms inbound --from {stranger} --body "路灯不亮"      (asked for an address)
  gridline sms inbound --from {worker_phone} --body "列表"
  gridline sms inbound --from {worker_phone} --body "CODE 收到"        (CODE from the forward)
  gridline sms inbound --from {worker_phone} --body "CODE 师傅下午到"   (relayed to the resident)
  gridline sms inbound --from {worker_phone} --body "CODE 办结 已更换灯泡"
  gridline sms inbound --from {resident} --body "1"
"""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
