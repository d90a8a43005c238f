"""Servers and databases for the load benches and tests/load: a seeded demo city,
`gridline serve` as a real process, the bare FastAPI baseline, a PostgreSQL cluster.

The city is the demo city (`app/importer/demo_city.py`: 8 grids with teams and rosters)
plus `residents` generated households registered in its buildings, so that
every bench message comes from a distinct registered resident: it routes to a
grid and produces a forward without tripping the flood guard (more than
`GRIDLINE_INBOUND_FLOOD_PER_MINUTE` messages from one number).
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import text

from bench.loadgen import ACCOUNT_SID, AUTH_TOKEN, HOTLINE
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent


def resident_phone(n: int) -> str:
    """E.164 phone of the n-th generated resident (n from 0)."""
    return f"+861376{n:07d}"


def seed_city(url: str, *, residents: int) -> None:
    """Migrate `url` and import the demo city with `residents` extra households."""
    from app.db import make_engine
    from app.importer.demo_city import _ADDRESSES, write_demo_city
    from app.importer.files import import_dir
    from app.migrate import upgrade
    from app.runtime import Runtime
    from app.settings import Settings

    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    places = [(address, grid) for grid, texts in _ADDRESSES.items() for address in texts]
    with tempfile.TemporaryDirectory(prefix="gridline-bench-city-") as tmp:
        folder = Path(tmp)
        write_demo_city(folder)
        with (folder / "residents.csv").open("a", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            for n in range(residents):
                address, grid = places[n % len(places)]
                writer.writerow(
                    [resident_phone(n), f"住户{n}", f"{address}{n % 900 + 101}室", grid, ""]
                )
        rt = Runtime.build(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
        try:
            import_dir(rt, folder)
        finally:
            rt.close()


# --- PostgreSQL --------------------------------------------------------------


@dataclass
class Postgres:
    """A cluster (ours, from tests/pg.py) or a server given by URL; databases by name."""

    admin_url: str
    cluster: object | None = None  # tests.pg.Cluster when we started it

    def url(self, database: str) -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{database}"

    def create(self, database: str, *, template: str | None = None) -> str:
        from app.db import make_engine

        admin = make_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                suffix = f' TEMPLATE "{template}"' if template else ""
                conn.execute(text(f'CREATE DATABASE "{database}"{suffix}'))
        finally:
            admin.dispose()
        return self.url(database)

    def drop(self, database: str) -> None:
        from app.db import make_engine

        admin = make_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        finally:
            admin.dispose()


@contextmanager
def postgres(pg_url: str | None = None, *, durable: bool = True) -> Iterator[Postgres]:
    """`pg_url` (an admin URL: we create and drop databases there), or a throwaway
    cluster (tests/pg.py), with PostgreSQL's durable defaults for benchmarks."""
    if pg_url:
        yield Postgres(admin_url=pg_url)
        return
    sys.path.insert(0, str(ROOT))
    from tests.pg import start_cluster

    cluster = start_cluster(durable=durable)
    try:
        yield Postgres(admin_url=cluster.admin_url, cluster=cluster)
    finally:
        cluster.stop()


@contextmanager
def scratch_database(backend: str, name: str) -> Iterator[str]:
    """A fresh database for one bench run: a SQLite file in a temporary
    directory, or database `name` on a throwaway PostgreSQL cluster."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'gridline.db'}"
        return
    with postgres() as pg:
        yield pg.create(name)


# --- servers -----------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server process on 127.0.0.1:`port`, its output in `log`."""

    base_url: str
    port: int
    log: Path
    argv: list[str]
    env: dict[str, str]
    cwd: Path = ROOT
    proc: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    def start(self, *, timeout: float = 60.0, ready: str = "/readyz") -> None:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, stdout=handle, stderr=subprocess.STDOUT
        )
        handle.close()
        self.starts += 1
        proc = self.proc

        def up() -> bool:
            if proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"server exited ({proc.returncode}):\n{tail}")
            try:
                return httpx.get(self.base_url + ready, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=timeout, what=f"{self.argv[-3:]} to answer {ready}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup (a crash, the OOM killer)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def gridline_env(
    database_url: str,
    *,
    base_url: str,
    workdir: Path,
    twilio_base: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment of a production-like `gridline serve`: signatures checked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRIDLINE_", "TWILIO_"))}
    env.update(
        {
            "GRIDLINE_DATABASE_URL": database_url,
            "GRIDLINE_PUBLIC_URL": base_url,
            "GRIDLINE_VALIDATE_SIGNATURES": "true",
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "GRIDLINE_HOTLINE_NUMBER": HOTLINE,
            "GRIDLINE_SPOOL_DIR": str(workdir / "spool"),
            "GRIDLINE_SMS_PROVIDER": "twilio" if twilio_base else "console",
        }
    )
    if twilio_base:
        env["GRIDLINE_TWILIO_API_BASE"] = twilio_base
    env.update(extra)
    return env


def gridline_command(tree: Path | None = None) -> list[str]:
    """The argv that runs `gridline`: this tree's, or that of another checkout
    `tree` (with its own `.venv`, e.g. an older commit measured side by side)."""
    if tree is None:
        return [sys.executable, "-m", "app.cli.main"]
    return [str(tree / ".venv" / "bin" / "gridline")]


def gridline_server(
    database_url: str,
    workdir: Path,
    *,
    twilio_base: str | None = None,
    port: int | None = None,
    worker: bool = True,
    tree: Path | None = None,
    **extra: str,
) -> Server:
    """`gridline serve` (uvicorn as in production, its worker a child process;
    `worker=False`: `serve --no-worker`, as on a web host with separate worker
    hosts); `tree`: the `gridline` of another checkout (see `gridline_command`)."""
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    env = gridline_env(
        database_url, base_url=base, workdir=workdir, twilio_base=twilio_base, **extra
    )
    argv = [
        *gridline_command(tree),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if not worker:
        argv.append("--no-worker")
    workdir.mkdir(parents=True, exist_ok=True)
    return Server(
        base_url=base, port=port, log=workdir / "serve.log", argv=argv, env=env, cwd=tree or ROOT
    )


def bare_server(workdir: Path) -> Server:
    """bench/bare_app.py under uvicorn with `gridline serve`'s settings."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.bare_app", "--port", str(port)]
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    return Server(
        base_url=f"http://127.0.0.1:{port}",
        port=port,
        log=workdir / "bare.log",
        argv=argv,
        env=env,
    )


def durable_server(database_url: str, workdir: Path) -> Server:
    """bench/durable_app.py on `database_url` under `gridline serve`'s settings."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [
        sys.executable,
        "-m",
        "bench.durable_app",
        "--port",
        str(port),
        "--database-url",
        database_url,
        "--public-url",
        base,
        "--auth-token",
        AUTH_TOKEN,
    ]
    workdir.mkdir(parents=True, exist_ok=True)
    return Server(
        base_url=base, port=port, log=workdir / "durable.log", argv=argv, env=dict(os.environ)
    )


@contextmanager
def running(server: Server, *, timeout: float = 60.0, ready: str = "/readyz") -> Iterator[Server]:
    server.start(timeout=timeout, ready=ready)
    try:
        yield server
    finally:
        server.stop()


def fresh_sqlite(template: Path, folder: Path) -> str:
    """A copy of a seeded SQLite file: a fresh database per run, no re-import."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gridline.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"
