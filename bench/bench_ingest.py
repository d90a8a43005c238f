"""Webhook ingest: signed inbound SMS against `gridline serve`, a minimal durable endpoint
and a bare FastAPI app.

    .venv/bin/python -m bench.bench_ingest [--runs 3] [--messages 2000] [--concurrency 32 64]
        [--backends sqlite postgresql] [--pg-url URL] [--rate 200] [--rate-seconds 10]
        [--no-worker] [--before CHECKOUT] [--write]

Each measurement starts `gridline serve` (uvicorn as in production, its
worker a child process, signatures checked, console SMS provider) on a fresh
database holding the demo city and one registered household per message,
warms it up (50 webhooks, and with a worker, until it has routed them: its
process started, its caches built, idle), then sends `--messages` signed
webhooks, each with a new MessageSid, from this process (an asyncio load
generator on keep-alive connections, requests signed before the clock starts):

- closed loop at each `--concurrency`: messages per second, p50 and p99 latency;
- open loop at `--rate` messages per second for `--rate-seconds`: p99 latency
  counted from each request's scheduled start (target < 100 ms).

With `--no-worker`, each load also goes to `gridline serve --no-worker` (rows
`<backend> no-worker`): the web process alone, as on a web host whose
`gridline worker` runs elsewhere (PostgreSQL); on one host the worker routes
the same messages while they arrive and takes a core of its own.

With `--before CHECKOUT`, each load also goes to the `gridline serve` of
another checkout (an older commit, with its own `.venv`; rows `before …`),
in the same run, on the same seeded databases.

The same loads go to `bench/durable_app.py` (the same signature check, one
INSERT and a durable commit per request, Gridline's engine settings and
uvicorn's) on an empty database of each backend, closed loop just before
each Gridline target, and each target's ratio Gridline / durable is taken
against the durable figure measured next to it: the headline, robust to a
host whose speed drifts. `bench/bare_app.py` (the same empty TwiML, nothing
else) is measured once per load, for scale.
PostgreSQL is a throwaway cluster (tests/pg.py, durable settings) unless
`--pg-url` names a server (an admin URL: databases are created and dropped).
Figures are medians over `--runs`; `--write` puts them in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.cpu import Meter, children
from bench.loadgen import Result, percentile, run_closed, run_open, webhook
from bench.report import command, loadavg, machine, median, ms, today, write_section
from bench.servers import (
    Postgres,
    Server,
    bare_server,
    durable_server,
    fresh_sqlite,
    gridline_server,
    postgres,
    resident_phone,
    running,
    seed_city,
    wait_for,
)

WARMUP = 50


@dataclass
class Figure:
    rate: float  # answered messages per second
    p50: float
    p99: float
    errors: int  # anything but 200
    web_cpu: float = float("nan")  # ms of CPU per answered message: the server process
    worker_cpu: float = float("nan")  # and its children (`gridline serve`'s worker)
    ratio: float = float("nan")  # rate / the rate of the bare app measured next to it


def figure(results: list[Result], elapsed: float) -> Figure:
    ok = [r for r in results if r.status == 200]
    latencies = [r.latency for r in ok]
    return Figure(
        rate=len(ok) / elapsed,
        p50=percentile(latencies, 0.50),
        p99=percentile(latencies, 0.99),
        errors=len(results) - len(ok),
    )


def load(
    server: Server,
    *,
    messages: int,
    concurrency: int | None,
    rate: float | None,
    routed: Callable[[], bool] | None = None,
) -> Figure:
    """Warm the server up, then one measured load; `rate` set: open loop.
    `routed` (a server with a worker): the warm-up is routed, so the worker
    process has started and is idle (its start-up is not in the figure)."""
    offset = messages  # warm-up senders after the measured ones
    warm = [
        webhook(server.base_url, sender=resident_phone(offset + n), body=f"预热{n}").payload
        for n in range(WARMUP)
    ]
    asyncio.run(run_closed(server.base_url, warm, concurrency=8))
    if routed is not None:
        wait_for(routed, timeout=120, what="the worker to route the warm-up", pause=0.1)
    payloads = [
        webhook(server.base_url, sender=resident_phone(n), body=f"楼道灯坏了，第{n}户").payload
        for n in range(messages)
    ]
    assert server.proc is not None
    pid = server.proc.pid
    meter = Meter({"web": lambda: [pid], "worker": lambda: children(pid)})
    meter.start()
    started = time.monotonic()
    if rate is None:
        assert concurrency
        results = asyncio.run(run_closed(server.base_url, payloads, concurrency=concurrency))
    else:
        results = asyncio.run(run_open(server.base_url, payloads, rate=rate))
    elapsed = time.monotonic() - started
    meter.stop()
    statuses = Counter(r.status for r in results)
    if set(statuses) != {200}:
        print(f"  non-200 answers: {dict(statuses)}", flush=True)
    fig = figure(results, elapsed)
    cpu = meter.per(sum(r.status == 200 for r in results))
    fig.web_cpu, fig.worker_cpu = cpu.get("web", fig.web_cpu), cpu.get("worker", fig.worker_cpu)
    return fig


class Databases:
    """A fresh seeded database per measurement, per backend."""

    def __init__(self, folder: Path, residents: int, pg: Postgres | None) -> None:
        self.folder = folder
        self.pg = pg
        self.count = 0
        self.sqlite_template = folder / "city.db"
        seed_city(f"sqlite:///{self.sqlite_template}", residents=residents)
        if pg is not None:
            seed_city(pg.create("bench_city"), residents=residents)

    @contextlib.contextmanager
    def fresh(self, backend: str) -> Iterator[tuple[str, Path]]:
        self.count += 1
        work = self.folder / f"m{self.count}"
        if backend == "sqlite":
            yield fresh_sqlite(self.sqlite_template, work), work
            return
        assert self.pg is not None
        name = f"bench_m{self.count}"
        try:
            yield self.pg.create(name, template="bench_city"), work
        finally:
            self.pg.drop(name)

    @contextlib.contextmanager
    def empty(self, backend: str) -> Iterator[tuple[str, Path]]:
        """An empty database (the durable app creates its one table)."""
        self.count += 1
        work = self.folder / f"m{self.count}"
        work.mkdir(parents=True)
        if backend == "sqlite":
            yield f"sqlite:///{work / 'durable.db'}", work
            return
        assert self.pg is not None
        name = f"bench_m{self.count}"
        try:
            yield self.pg.create(name), work
        finally:
            self.pg.drop(name)


@contextlib.contextmanager
def all_routed(url: str) -> Iterator[Callable[[], bool]]:
    """A check that every stored message has been processed (and some were)."""
    from sqlalchemy import func, select

    from app.db import make_engine
    from app.models.messages import InboundMessage

    engine = make_engine(url)

    def check() -> bool:
        with engine.connect() as conn:
            stored = conn.scalar(select(func.count()).select_from(InboundMessage)) or 0
            waiting = conn.scalar(select(func.count()).where(InboundMessage.status == "received"))
        return stored > 0 and waiting == 0

    try:
        yield check
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Target:
    """One server under load: `gridline serve` of this tree (or of `--before`'s), or a
    baseline (`durable <backend>`, `bare`)."""

    label: str
    backend: str  # sqlite | postgresql | "" (bare)
    kind: str = "gridline"  # gridline | durable | bare
    worker: bool = True
    tree: Path | None = None


def targets_of(args: argparse.Namespace) -> list[Target]:
    """`sqlite`, `postgresql`; with --no-worker `sqlite no-worker`, ...; with --before
    the same again as `before sqlite`, ... (the older tree, measured beside them)."""
    trees: list[tuple[str, Path | None]] = [("", None)]
    if args.before:
        trees.append(("before ", args.before))
    out = []
    for prefix, tree in trees:
        for backend in args.backends:
            out.append(Target(f"{prefix}{backend}", backend, tree=tree))
            if args.no_worker:
                out.append(Target(f"{prefix}{backend} no-worker", backend, worker=False, tree=tree))
    return out


def durable_of(backend: str) -> Target:
    return Target(f"durable {backend}", backend, kind="durable")


BARE = Target("bare", "", kind="bare")


def measure_target(
    target: Target,
    dbs: Databases,
    *,
    messages: int,
    concurrency: int | None,
    rate: float | None,
) -> Figure:
    """One measurement of `target` on a fresh database (Gridline: the seeded city;
    the durable app: an empty database of the same backend)."""

    def run(server: Server, routed: Callable[[], bool] | None = None) -> Figure:
        with running(server):
            return load(
                server, messages=messages, concurrency=concurrency, rate=rate, routed=routed
            )

    if target.kind == "bare":
        return run(bare_server(dbs.folder / "bare"))
    if target.kind == "durable":
        with dbs.empty(target.backend) as (url, work):
            return run(durable_server(url, work))
    with dbs.fresh(target.backend) as (url, work):
        server = gridline_server(url, work, worker=target.worker, tree=target.tree)
        with all_routed(url) as routed:
            return run(server, routed if target.worker else None)


def measure(args: argparse.Namespace, dbs: Databases) -> dict[str, list[Figure]]:
    """One run: every target × load; keyed `label/load`.

    Closed loop, each Gridline target is paired with a measurement of the
    durable app on its backend just before it, and its ratio is taken against
    that one: the host's speed drifts (twofold within minutes at times, in the
    CPU per message of the same code), and baselines measured once, after
    several targets, would compare moments minutes apart. Open loop (every
    target answers the rate), each target and baseline once."""
    out: dict[str, list[Figure]] = {}
    loads: list[tuple[str, int | None, float | None, int]] = [
        (f"c{c}", c, None, args.messages) for c in args.concurrency
    ]
    if args.rate:
        loads.append(("rate", None, args.rate, int(args.rate * args.rate_seconds)))

    def one(target: Target, spec: tuple[str, int | None, float | None, int]) -> Figure:
        name, concurrency, rate, messages = spec
        fig = measure_target(target, dbs, messages=messages, concurrency=concurrency, rate=rate)
        out.setdefault(f"{target.label}/{name}", []).append(fig)
        if target.kind != "gridline":
            report_line(target.label, name, fig)
        return fig

    for spec in loads:
        name, _, rate, _ = spec
        one(BARE, spec)
        if rate is not None:
            for backend in args.backends:
                one(durable_of(backend), spec)
        for target in targets_of(args):
            if rate is None:
                durable = one(durable_of(target.backend), spec)
            else:
                durable = out[f"durable {target.backend}/{name}"][-1]
            fig = one(target, spec)
            fig.ratio = fig.rate / durable.rate
            report_line(target.label, name, fig)
    return out


def report_line(target: str, name: str, fig: Figure) -> None:
    ratio = "" if math.isnan(fig.ratio) else f"  ratio to durable {fig.ratio:.2f}"
    print(
        f"  {target:22} {name:5} {fig.rate:7.0f}/s  p50 {ms(fig.p50):>8}  "
        f"p99 {ms(fig.p99):>8}  errors {fig.errors}  CPU ms/msg web {fig.web_cpu:.2f} "
        f"worker {fig.worker_cpu:.2f}{ratio}  (load {loadavg()})",
        flush=True,
    )


def report(args: argparse.Namespace, runs: list[dict[str, list[Figure]]], loads: list[str]) -> str:
    def med(key: str, attr: str) -> float:
        return median([getattr(f, attr) for run in runs for f in run.get(key, [])])

    def short(name: str) -> str:
        return f"concurrency {name[1:]}" if name.startswith("c") else "open loop"

    targets = targets_of(args)
    before = (
        f" Rows `before …`: the `gridline` of `{args.before}`, an older commit's checkout "
        "with its own venv, measured in the same run."
        if args.before
        else ""
    )
    lines = [
        "## Webhook ingest",
        "",
        f"`{command('bench.bench_ingest')}` — {today()}, {machine()}.",
        f"Load average (1/5/15 min) at the start: {args.load_start}; at the end: {loadavg()}.",
        f"Medians of {args.runs} runs. Each Gridline figure: a fresh database with the demo "
        f"city and one registered household per message, `gridline serve` (uvicorn as in "
        f"production, its worker a child process, signatures checked, console provider) "
        f"warmed up (50 webhooks, routed before the clock starts where a worker runs), "
        f"{args.messages:,} signed webhooks with new MessageSids from the bench's own "
        f"process (an asyncio load generator) on keep-alive connections."
        + before
        + (
            " Rows `no-worker`: `gridline serve --no-worker`, the web process alone as on "
            "a web host whose worker runs elsewhere."
            if args.no_worker
            else ""
        )
        + " Baselines: `durable <backend>` is `bench/durable_app.py` (the same signature "
        "check, one INSERT and a durable commit per request, on an engine from "
        "`app.db.make_engine`: Gridline's SQLite pragmas — WAL, synchronous=FULL — its "
        "pool, PostgreSQL's synchronous_commit on; the same uvicorn settings) on an empty "
        "database of that backend, measured closed loop just before each Gridline target: "
        "a ratio is a target's messages/s over those of the durable app measured next to "
        "it. `bare` is `bench/bare_app.py` (no signature check, no database), for scale.",
        "",
        "Headline: Gridline's messages/s as a fraction of the durable endpoint's on the "
        "same backend, measured next to it, same load — "
        + "; ".join(
            f"{t.label} {short(name)} {med(f'{t.label}/{name}', 'ratio'):.2f}"
            for t in targets
            for name in loads
        )
        + ".",
        "",
        "| target | load | messages/s | p50 | p99 | non-200 | ratio to durable (msg/s) "
        "| CPU ms/msg: server | its worker |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [*targets, *(durable_of(b) for b in args.backends), BARE]
    for target in rows:
        for name in loads:
            key = f"{target.label}/{name}"
            if not any(run.get(key) for run in runs):
                continue
            label = (
                f"concurrency {name[1:]}"
                if name.startswith("c")
                else f"open loop {args.rate:.0f}/s × {args.rate_seconds:.0f} s"
            )
            r = "—" if target.kind != "gridline" else f"{med(key, 'ratio'):.2f}"
            errors = sum(f.errors for run in runs for f in run.get(key, []))
            worker = (
                f"{med(key, 'worker_cpu'):.2f}"
                if target.kind == "gridline" and target.worker
                else "—"
            )
            lines.append(
                f"| {target.label} | {label} | {med(key, 'rate'):,.0f} | {ms(med(key, 'p50'))} | "
                f"{ms(med(key, 'p99'))} | {errors} | {r} | {med(key, 'web_cpu'):.2f} | {worker} |"
            )
    if args.rate:
        lines += [
            "",
            f"Target: p99 < 100 ms at {args.rate:.0f} messages/s open loop (latency from each "
            "request's scheduled start), no non-200; closed loop at least 0.8× the durable "
            "endpoint. CPU ms/msg: CPU time (user + system, /proc) of the server process per "
            "answered webhook, and of its child processes (the worker), over the measured load.",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 64])
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument("--pg-url", help="an admin URL of a PostgreSQL server to use")
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop rate; 0: skip")
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--no-worker", action="store_true", help="also measure `serve --no-worker`")
    parser.add_argument(
        "--before", type=Path, help="also measure the `gridline` of this checkout (its .venv)"
    )
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    args.load_start = loadavg()
    loads = [f"c{c}" for c in args.concurrency] + (["rate"] if args.rate else [])
    residents = max(args.messages, int(args.rate * args.rate_seconds)) + WARMUP
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ingest-")))
        pg = stack.enter_context(postgres(args.pg_url)) if "postgresql" in args.backends else None
        t0 = time.monotonic()
        dbs = Databases(folder, residents, pg)
        print(f"seeded in {time.monotonic() - t0:.1f} s; load {loadavg()}", flush=True)
        runs = []
        for n in range(args.runs):
            print(f"run {n + 1}/{args.runs}", flush=True)
            runs.append(measure(args, dbs))
    text = report(args, runs, loads)
    print(text)
    if args.write:
        write_section("ingest", text)


if __name__ == "__main__":
    main()
