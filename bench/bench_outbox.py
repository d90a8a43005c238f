"""The outbox under a backlog: an urgent forward overtakes 50,000 bulk SMS, and the
per-sender rate holds.

    .venv/bin/python -m bench.bench_outbox [--runs 3] [--backlog 50000] [--sender-rate 20]
        [--backends sqlite postgresql] [--pg-url URL] [--window 10] [--write]

Each run: a fresh database with the demo city and `--backlog` pending bulk
rows (priority PRIORITY_BULK, the band of digests and broadcasts) in the
outbox; `gridline serve` with the twilio provider against the fake Twilio REST
server (tests/fake_twilio.py) and GRIDLINE_SENDER_RATE_PER_S=`--sender-rate`.
Once the worker is draining the backlog:

- the send rate at the gateway over `--window` seconds, against the setting;
- a registered resident texts "着火了" (an urgent case under the built-in
  policy): the time from the webhook POST until that case's forward reaches
  the gateway (target < 2 s).

Medians over `--runs`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

from app.db import make_engine
from app.importer.demo_city import GRIDS, member_phone
from app.models.messages import OutboundMessage
from bench.bench_e2e import TimedFakeTwilio
from bench.bench_ingest import Databases
from bench.loadgen import run_closed, webhook
from bench.report import command, loadavg, machine, median, ms, today, write_section
from bench.servers import gridline_server, postgres, resident_phone, running, wait_for
from routing.delivery import PRIORITY_BULK


def fill_backlog(url: str, count: int) -> None:
    now = datetime.now(UTC)
    phones = [member_phone(grid, i) for grid in GRIDS for i in range(3)]
    rows = [
        {
            "to_phone": "+86" + phones[n % len(phones)],
            "template": "overdue_digest",
            "params": {},
            "locale": "zh",
            "body": f"[bulk-{n}] 今日超时工单摘要",
            "priority": PRIORITY_BULK,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for n in range(count)
    ]
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for start in range(0, len(rows), 5000):
                conn.execute(insert(OutboundMessage), rows[start : start + 5000])
    finally:
        engine.dispose()


def arrivals_of(fake: TimedFakeTwilio, marker: str) -> list[float]:
    with fake._arrivals_lock:
        return [at for at, m in fake.arrivals if marker in m.body]


def one_run(args: argparse.Namespace, url: str, work: Path) -> dict[str, float]:
    fill_backlog(url, args.backlog)
    with TimedFakeTwilio.serve() as fake:
        assert isinstance(fake, TimedFakeTwilio)
        server = gridline_server(
            url,
            work,
            twilio_base=fake.base_url,
            GRIDLINE_SENDER_RATE_PER_S=str(args.sender_rate),
            GRIDLINE_WORKER_POLL_SECONDS="0.2",
        )
        with running(server):
            # Steady state: the worker has been draining the backlog for a while.
            wait_for(lambda: len(fake.arrivals) >= 5, timeout=60, what="the backlog to drain")
            t0 = time.monotonic()
            wait_for(
                lambda: time.monotonic() - t0 >= args.window, timeout=args.window + 5, pause=0.1
            )
            bulk = [a for a in arrivals_of(fake, "[bulk-") if t0 <= a <= t0 + args.window]
            measured = (len(bulk) - 1) / (bulk[-1] - bulk[0]) if len(bulk) > 1 else 0.0

            hook = webhook(server.base_url, sender=resident_phone(0), body="着火了！[urgent-0]")
            sent = time.monotonic()
            (result,) = asyncio.run(run_closed(server.base_url, [hook.payload], concurrency=1))
            assert result.status == 200, result
            wait_for(
                lambda: arrivals_of(fake, "[urgent-0]"),
                timeout=60,
                what="the urgent forward at the gateway",
                pause=0.01,
            )
            # The first SMS carrying the text to somebody else than the resident.
            urgent = min(
                at
                for at, m in list(fake.arrivals)
                if "[urgent-0]" in m.body and m.to != resident_phone(0)
            )
            backlog_left = args.backlog - len(arrivals_of(fake, "[bulk-"))
    return {
        "urgent": urgent - sent,
        "rate": measured,
        "backlog_left": backlog_left,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument("--sender-rate", type=float, default=20.0)
    parser.add_argument("--window", type=float, default=10.0, help="s over which the rate is read")
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument("--pg-url", help="an admin URL of a PostgreSQL server to use")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    load_start = loadavg()
    results: dict[str, list[dict[str, float]]] = {}
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-outbox-")))
        pg = stack.enter_context(postgres(args.pg_url)) if "postgresql" in args.backends else None
        dbs = Databases(folder, 10, pg)
        for n in range(args.runs):
            for backend in args.backends:
                with dbs.fresh(backend) as (url, work):
                    run = one_run(args, url, work)
                print(
                    f"run {n + 1} {backend}: urgent forward after {ms(run['urgent'])}, "
                    f"rate {run['rate']:.2f}/s (setting {args.sender_rate:g}/s), "
                    f"{run['backlog_left']:,.0f} bulk rows still queued (load {loadavg()})",
                    flush=True,
                )
                results.setdefault(backend, []).append(run)
    lines = [
        "## Outbox: urgent forward behind a bulk backlog, per-sender rate (issue #6)",
        "",
        f"`{command('bench.bench_outbox')}` — {today()}, {machine()}.",
        f"Load average (1/5/15 min) at the start: {load_start}; at the end: {loadavg()}.",
        f"Medians of {args.runs} runs. A fresh database with the demo city and "
        f"{args.backlog:,} pending bulk SMS (PRIORITY_BULK) in the outbox; `gridline serve` "
        f"(twilio provider against the fake Twilio REST server, its worker a child process "
        f"and on PostgreSQL its sender another, "
        f"GRIDLINE_SENDER_RATE_PER_S={args.sender_rate:g}). Once it drains the backlog: the send "
        f'rate at the gateway over {args.window:g} s, then a resident\'s "着火了" (urgent '
        f"policy) and the time from its webhook POST to its forward at the gateway.",
        "",
        "| backend | urgent forward at the gateway | target | send rate measured | setting |",
        "|---|---|---|---|---|",
    ]
    for backend, runs in results.items():
        lines.append(
            f"| {backend} | {ms(median([r['urgent'] for r in runs]))} | < 2 s | "
            f"{median([r['rate'] for r in runs]):.2f}/s | {args.sender_rate:g}/s |"
        )
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("outbox", text)


if __name__ == "__main__":
    main()
