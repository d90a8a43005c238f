"""End to end: from the webhook POST to the forward handed to the (fake) gateway.

    .venv/bin/python -m bench.bench_e2e [--runs 3] [--rate 50 20] [--seconds 30]
        [--backends sqlite postgresql] [--pg-url URL] [--workers N ...]
        [--set GRIDLINE_NAME=VALUE ...] [--before CHECKOUT] [--write]

`gridline serve` runs with GRIDLINE_SMS_PROVIDER=twilio against the fake
Twilio REST server (tests/fake_twilio.py, real HTTP on 127.0.0.1, here in
the load generator's process), which notes when each create arrives. Signed
webhooks arrive open loop at each `--rate` per second for `--seconds` (after
a few warm-up messages have gone all the way through), each from
a distinct registered household of the demo city (so each one opens a case,
routes to its grid and is forwarded to the grid's on-duty team), each body
carrying a marker. A forward is matched to its webhook by that marker; the
latency runs from the webhook's scheduled send time to the arrival of the
first forward of its case at the gateway. Targets: p99 < 200 ms at 20/s,
< 1 s at 50/s.

A message whose forward has not arrived `--drain` seconds after the load
ended counts as late (its latency is "more than the window"): the p99 is then
reported as such. Medians over `--runs`, a fresh database each run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.bench_ingest import Databases
from bench.cpu import Meter, children
from bench.loadgen import ACCOUNT_SID, AUTH_TOKEN, percentile, run_open, webhook
from bench.report import command, loadavg, machine, median, ms, today, write_section
from bench.servers import (
    Server,
    gridline_command,
    gridline_server,
    postgres,
    resident_phone,
    running,
    wait_for,
)
from tests.fake_twilio import FakeTwilio, RecordedMessage

_MARK = re.compile(r"\[e2e-(\d+)\]")


class TimedFakeTwilio(FakeTwilio):
    """The fake Twilio, noting on `time.monotonic()` when each message was accepted."""

    def __init__(self) -> None:
        super().__init__(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
        self.arrivals: list[tuple[float, RecordedMessage]] = []
        self._arrivals_lock = threading.Lock()

    def _accept(self, *, to: str, from_: str, body: str, callback: str | None) -> RecordedMessage:
        message = super()._accept(to=to, from_=from_, body=body, callback=callback)
        with self._arrivals_lock:
            self.arrivals.append((time.monotonic(), message))
        return message

    def first_forwards(self, residents: set[str]) -> dict[int, float]:
        """Marker → arrival time of the first SMS carrying it to somebody else than
        a resident (a team member: the forward)."""
        with self._arrivals_lock:
            arrivals = list(self.arrivals)
        first: dict[int, float] = {}
        for at, message in arrivals:
            found = _MARK.search(message.body)
            if found and message.to not in residents:
                first.setdefault(int(found[1]), at)
        return first


@dataclass
class Run:
    sent: int
    answered: int
    forwarded: int
    p50: float
    p99: float
    max: float
    late: int
    cpu: dict[str, float] = field(default_factory=dict)  # ms per message, by process group
    # p50 and p99 seconds of each stage, from the database's timestamps.
    stages: dict[str, tuple[float, float]] = field(default_factory=dict)


# Issue 17's targets by rate (messages/s).
TARGETS = {20.0: "p99 < 200 ms", 50.0: "p99 < 1 s"}

WARMUP = 10  # messages through the whole path before the clock starts


def one_run(
    args: argparse.Namespace,
    url: str,
    work: Path,
    rate: float,
    extra: int,
    tree: Path | None = None,
) -> Run:
    """One measurement: `gridline serve` and `extra` more `gridline worker` processes
    (of the checkout `tree`, default this one)."""
    with TimedFakeTwilio.serve() as fake:
        assert isinstance(fake, TimedFakeTwilio)
        server = gridline_server(
            url,
            work,
            twilio_base=fake.base_url,
            tree=tree,
            GRIDLINE_WORKER_POLL_SECONDS="0.2",
            **dict(setting.split("=", 1) for setting in args.set),
        )
        count = int(rate * args.seconds)
        # Warm-up messages come from the households after the measured ones.
        first_warm = int(max(args.rate) * args.seconds)
        warm = range(first_warm, first_warm + WARMUP)
        residents = {resident_phone(n) for n in [*range(count), *warm]}
        workers = [
            Server(
                base_url=server.base_url,
                port=server.port,
                log=work / f"worker{k}.log",
                argv=[*gridline_command(tree), "worker"],
                env=server.env,
                cwd=server.cwd,
            )
            for k in range(extra)
        ]
        with contextlib.ExitStack() as procs:
            procs.enter_context(running(server))
            for worker in workers:  # ready when the server answers: it already does
                procs.enter_context(running(worker, ready="/healthz"))
            # Warm up (the worker process starting, first queries, connections):
            # the figure is the steady state, not the start-up.
            warmups = [
                webhook(server.base_url, sender=resident_phone(n), body=f"楼道灯坏了 [e2e-{n}]")
                for n in warm
            ]
            asyncio.run(run_open(server.base_url, [h.payload for h in warmups], rate=WARMUP))
            wait_for(
                lambda: set(warm) <= set(fake.first_forwards(residents)),
                timeout=60,
                what="the warm-up forwards",
                pause=0.1,
            )
            hooks = [
                webhook(server.base_url, sender=resident_phone(n), body=f"楼道灯坏了 [e2e-{n}]")
                for n in range(count)
            ]
            meter = _meter(server, workers)
            meter.start()
            results = asyncio.run(run_open(server.base_url, [h.payload for h in hooks], rate=rate))
            statuses = Counter(r.status for r in results)
            answered = {r.index: r.start for r in results if r.status == 200}
            with contextlib.suppress(TimeoutError):
                wait_for(
                    lambda: (
                        len(set(answered) & set(fake.first_forwards(residents))) == len(answered)
                    ),
                    timeout=args.drain,
                    what="every forward at the gateway",
                    pause=0.2,
                )
            first = fake.first_forwards(residents)
            meter.stop()
    latencies = [first[i] - start for i, start in answered.items() if i in first]
    late = len(answered) - len(latencies)
    stages = _stages(url, count)
    # A late message's latency is at least the whole window: it sorts last.
    padded = latencies + [float("inf")] * late
    if set(statuses) != {200}:
        print(f"  non-200 answers: {dict(statuses)}", flush=True)
    return Run(
        sent=count,
        answered=len(answered),
        forwarded=len(latencies),
        p50=percentile(padded, 0.50),
        p99=percentile(padded, 0.99),
        max=max(padded) if padded else float("nan"),
        late=late,
        cpu=meter.per(len(answered)),
        stages=stages,
    )


def _stages(url: str, count: int) -> dict[str, tuple[float, float]]:
    """Where a measured message's time went, from the server's own timestamps:
    `routed` from its storing to the end of its processing (the case opened,
    routed, its forwards in the outbox), `sent` from there to its first
    forward accepted by the gateway. p50 and p99 seconds each."""
    from sqlalchemy import func, select

    from app.db import make_engine
    from app.models.messages import InboundMessage, OutboundMessage

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(
                    InboundMessage.body,
                    InboundMessage.received_at,
                    InboundMessage.processed_at,
                    func.min(OutboundMessage.sent_at),
                )
                .join(OutboundMessage, OutboundMessage.inbound_id == InboundMessage.id)
                .where(OutboundMessage.template == "forward")
                .group_by(
                    InboundMessage.id,
                    InboundMessage.body,
                    InboundMessage.received_at,
                    InboundMessage.processed_at,
                )
            ).all()
    finally:
        engine.dispose()
    routed, sent = [], []
    for body, received, processed, first_sent in rows:
        found = _MARK.search(body)
        if found is None or int(found.group(1)) >= count or processed is None:
            continue  # a warm-up message
        routed.append((processed - received).total_seconds())
        if first_sent is not None:
            sent.append((first_sent - processed).total_seconds())
    return {
        name: (percentile(values, 0.50), percentile(values, 0.99))
        for name, values in (("routed", routed), ("sent", sent))
        if values
    }


def _meter(server: Server, workers: list[Server]) -> Meter:
    """CPU by group: the web process, the worker processes (serve's child and
    any extra `gridline worker`), this process (load generator and fake Twilio),
    and the rest of the machine (the database server, the kernel)."""

    def pid(s: Server) -> int:
        assert s.proc is not None
        return s.proc.pid

    return Meter(
        {
            "web": lambda: [pid(server)],
            "worker": lambda: [
                *children(pid(server)),
                *(p for w in workers for p in (pid(w), *children(pid(w)))),
            ],
            "bench": lambda: [os.getpid()],
        }
    )


def label(backend: str, extra: int) -> str:
    return backend if not extra else f"{backend} +{extra} worker{'s' if extra > 1 else ''}"


def fmt(seconds: float) -> str:
    return "> window" if seconds == float("inf") else ms(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, nargs="+", default=[50.0, 20.0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[0],
        help="extra `gridline worker` processes on PostgreSQL, one row each "
        "(SQLite runs one server: README)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="GRIDLINE_NAME=VALUE",
        help="a setting of the server (and its workers), repeatable",
    )
    parser.add_argument("--drain", type=float, default=60.0, help="s to wait after the load")
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument("--pg-url", help="an admin URL of a PostgreSQL server to use")
    parser.add_argument(
        "--before", type=Path, help="also measure the `gridline` of this checkout (its .venv)"
    )
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    load_start = loadavg()
    results: dict[tuple[str, float], list[Run]] = {}
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-e2e-")))
        pg = stack.enter_context(postgres(args.pg_url)) if "postgresql" in args.backends else None
        dbs = Databases(folder, int(max(args.rate) * args.seconds) + WARMUP, pg)
        trees: list[tuple[str, Path | None]] = [("", None)]
        if args.before:
            trees.append(("before ", args.before))
        targets = [
            (prefix + label(backend, extra), backend, extra, tree)
            for prefix, tree in trees
            for backend in args.backends
            for extra in (args.workers if backend == "postgresql" else [0])
        ]
        for n in range(args.runs):
            for rate, (name, backend, extra, tree) in [(r, t) for r in args.rate for t in targets]:
                with dbs.fresh(backend) as (url, work):
                    run = one_run(args, url, work, rate, extra, tree)
                print(
                    f"run {n + 1} {name} {rate:.0f}/s: {run.answered}/{run.sent} answered, "
                    f"{run.forwarded} forwarded, p50 {fmt(run.p50)} p99 {fmt(run.p99)} "
                    f"max {fmt(run.max)} late {run.late} (load {loadavg()}); CPU ms/message "
                    + " ".join(f"{k} {v:.1f}" for k, v in run.cpu.items())
                    + "; stages p50/p99 "
                    + " ".join(f"{k} {ms(a)}/{ms(b)}" for k, (a, b) in run.stages.items()),
                    flush=True,
                )
                results.setdefault((name, rate), []).append(run)
    lines = [
        "## End to end: webhook to forward at the gateway",
        "",
        f"`{command('bench.bench_e2e')}` — {today()}, {machine()}.",
        f"Load average (1/5/15 min) at the start: {load_start}; at the end: {loadavg()}.",
        f"Medians of {args.runs} runs. `gridline serve` (twilio provider, its worker a child "
        f"process) against the fake Twilio REST "
        f"server; signed webhooks at each rate for {args.seconds:.0f} s (open loop, after "
        f"{WARMUP} warm-up messages have gone "
        f"through; `+N workers`: N more `gridline worker` processes on the same database), "
        f"each from a distinct registered household of the demo "
        f"city; latency from the webhook's scheduled send to the arrival of its case's first "
        f"forward at the gateway. Late: no forward {args.drain:.0f} s after the load ended."
        + (
            f" Rows `before …`: the `gridline` of `{args.before}`, an older commit's checkout "
            "with its own venv, measured in the same runs, interleaved."
            if args.before
            else ""
        ),
        "",
        "| backend | rate | p50 | p99 | max | forwarded / answered | late | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (backend, rate), runs in results.items():

        def med(attr: str, runs: list[Run] = runs) -> float:
            return median([getattr(r, attr) for r in runs])

        lines.append(
            f"| {backend} | {rate:.0f}/s | {fmt(med('p50'))} | {fmt(med('p99'))} | "
            f"{fmt(med('max'))} | "
            f"{med('forwarded'):,.0f} / {med('answered'):,.0f} | {med('late'):,.0f} | "
            f"{TARGETS.get(rate, '—')} |"
        )
    groups = ["web", "worker", "bench", "other", "machine"]
    lines += [
        "",
        "CPU time per message, from the first measured webhook until its last forward "
        "arrived (ms, medians; /proc): `web` the `gridline serve` process, `worker` its "
        "worker process(es), `bench` the load generator and fake Twilio, `other` the rest "
        "of the machine's busy time (the database server, the kernel), `machine` the sum. "
        "Two cores give 2,000 ms of CPU a second: a rate of r messages/s fits only if "
        "r × machine stays well under that.",
        "",
        "| backend | rate | " + " | ".join(groups) + " |",
        "|---|---|" + "---|" * len(groups),
    ]
    for (backend, rate), runs in results.items():
        cells = [f"{median([r.cpu.get(g, 0.0) for r in runs]):.1f}" for g in groups]
        lines.append(f"| {backend} | {rate:.0f}/s | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Where the time went (medians of the runs' p50 / p99, from the server's own "
        "timestamps): `routed` from the webhook storing the message to the worker's "
        "commit of its case, routing and forwards; `sent` from there to the first forward "
        "accepted by the gateway.",
        "",
        "| backend | rate | routed p50 | routed p99 | sent p50 | sent p99 |",
        "|---|---|---|---|---|---|",
    ]
    for (backend, rate), runs in results.items():
        cells = [
            fmt(median([r.stages[stage][q] for r in runs if stage in r.stages]))
            for stage in ("routed", "sent")
            for q in (0, 1)
        ]
        lines.append(f"| {backend} | {rate:.0f}/s | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("e2e", text)


if __name__ == "__main__":
    main()
