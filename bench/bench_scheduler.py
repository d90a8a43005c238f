"""Scheduler at scale: 100,000 open cases, 10,000 of them falling due at once.

    python -m bench.bench_scheduler [--cases 100000] [--due 10000] [--workers 3]
        [--lease-batch 100] [--fire-batch 20 [1 ...]]
        [--runs 3] [--steady-rate 50] [--steady-seconds 60] [--write]

What it does, on a throwaway PostgreSQL cluster with its crash-safe defaults
(fsync and synchronous commit on; `tests/pg.py`):

1. imports the regions, members and rosters of the Zhoushan-sized city
   (`app/importer/zhoushan_city.py`: 2,353 grids, ~21,000 members, their shifts);
2. seeds `--cases` open cases spread over every grid, each as routing leaves
   it: forwarded to its grid's members on shift, with its three deadline steps
   (claim, escalate, resolve). Seeding writes rows directly (routing 100,000
   texts one by one would take longer than the benchmark);
3. **burst**: for each run and each `--fire-batch` value (steps fired in one
   transaction; several values are measured side by side, in turns), copies
   the seeded database (`CREATE DATABASE …
   TEMPLATE`), sets the claim deadline of `--due` cases to one moment a few
   seconds ahead, starts `--workers` worker processes (the real
   `app.deadlines.scheduler.run_due` loop, polling every `--poll` seconds when idle) and
   measures from that moment until the last of those steps has committed.
   Each fired claim deadline texts the grid's whole team and the town office
   on duty, so this writes roughly ten outbox rows per step. The machine's
   busy CPU time over the burst (bench/cpu.py), per step, is reported too;
4. **steady** (with the first `--fire-batch` value): `--steady-rate` claim deadlines per second for
   `--steady-seconds`, and the lag from each step's due time to the commit of
   the transaction that fired it (p50, p99).

Afterwards it checks the work: every due step fired exactly once (one
`claim_overdue` event per case, none left undone). Figures are medians over
`--runs`. `--write` puts them into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text, update

from bench import cpu, report

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Scheduler at scale"


# ---------------------------------------------------------------- seeding


def _import_city(url: str) -> None:
    from app.importer.files import import_dir
    from app.importer.zhoushan_city import _write, generate
    from app.runtime import Runtime
    from app.settings import Settings

    city = generate()
    with tempfile.TemporaryDirectory(prefix="bench-sched-") as folder:
        path = Path(folder)
        _write(path / "regions.csv", ("code", "name", "level", "parent_code"), city.regions)
        _write(path / "members.csv", ("phone", "name", "role", "unit_code"), city.members)
        _write(
            path / "roster.csv",
            ("unit_code", "phone", "starts_at", "ends_at", "rrule"),
            city.roster,
        )
        settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
        rt = Runtime.build(settings)
        try:
            import_dir(rt, path)
        finally:
            rt.close()


def _seed(url: str, *, cases: int, now: datetime) -> dict[str, Any]:
    """`cases` open cases over every grid, as routing leaves them, deadlines far ahead."""
    from app.db import make_engine
    from app.directory import rosters
    from app.models.cases import Case, CaseEvent, CaseParticipant
    from app.models.deadlines import ScheduledStep
    from app.models.directory import Region
    from app.runtime import Runtime
    from app.settings import Settings
    from routing.policy import policy_snapshot

    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    rt = Runtime.build(settings)
    policy = rt.policies.policies["normal"]
    snapshot = policy_snapshot(policy)
    with rt.sessions() as session:
        grids = list(session.scalars(select(Region).where(Region.level == "grid")))
        on_shift = {
            g.id: [m.phone for m in rosters.on_duty(session, g, now=now, tz=settings.tz)[0]]
            for g in grids
        }
        parents = {r.id: r.parent_id for r in session.scalars(select(Region))}
    rt.close()
    engine = make_engine(url)
    far = now + timedelta(days=30)
    chunk = 5_000
    t0 = time.perf_counter()
    with engine.begin() as conn:
        for start in range(0, cases, chunk):
            rows = []
            for i in range(start, min(cases, start + chunk)):
                grid = grids[i % len(grids)]
                community = parents[grid.id]
                town = parents[community] if community else None
                county = parents[town] if town else None
                code = f"{i:07d}"
                rows.append(
                    {
                        "code": code,
                        "open_code": code,
                        "status": "open",
                        "level": "grid",
                        "priority": "normal",
                        "policy_snapshot": snapshot,
                        "category": None,
                        "resident_phone": f"+86139{i:08d}",
                        "grid_id": grid.id,
                        "town_id": town,
                        "county_id": county,
                        "summary": f"第{i}件：路灯坏了",
                        "routing_method": "home",
                        "routing_evidence": {"method": "home"},
                        "address_attempts": 0,
                        "claim_due_at": far,
                        "escalate_due_at": far + timedelta(minutes=30),
                        "resolve_due_at": far + timedelta(days=3),
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            ids = conn.scalars(
                insert(Case).returning(Case.id, sort_by_parameter_order=True), rows
            ).all()
            steps, parts, events = [], [], []
            for case_id, row in zip(ids, rows, strict=True):
                for kind, due in (
                    ("claim_overdue", row["claim_due_at"]),
                    ("escalate", row["escalate_due_at"]),
                    ("resolve_overdue", row["resolve_due_at"]),
                ):
                    steps.append({"case_id": case_id, "kind": kind, "due_at": due})
                for phone in on_shift[row["grid_id"]]:
                    parts.append(
                        {
                            "case_id": case_id,
                            "phone": phone,
                            "reason": "forwarded",
                            "level": "grid",
                            "added_at": now,
                        }
                    )
                events.append(
                    {
                        "case_id": case_id,
                        "at": now,
                        "kind": "routed",
                        "actor": "system",
                        "channel": "system",
                        "detail": {"method": "home"},
                    }
                )
            conn.execute(insert(ScheduledStep), steps)
            conn.execute(insert(CaseParticipant), parts)
            conn.execute(insert(CaseEvent), events)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return {"grids": len(grids), "seed_seconds": round(time.perf_counter() - t0, 1)}


# ---------------------------------------------------------------- workers


def worker_main(url: str, poll: float, out: str) -> None:
    """A worker process: the real step loop with the real clock. It prints
    `ready`, reads the end time (epoch seconds) from stdin, fires until then
    and until idle, and writes (due, committed) per fired step to `out`."""
    from app.deadlines.scheduler import run_due
    from app.runtime import Runtime
    from app.settings import Settings

    settings = Settings(_env_file=None, database_url=url, worker_poll_seconds=poll)  # type: ignore[call-arg]
    rt = Runtime.build(settings)
    fired: list[tuple[float, float]] = []
    pending: list[float] = []

    def hook(step: Any, outcome: str) -> None:
        if outcome == "fired":
            pending.append(step.due_at.timestamp())

    try:
        run_due(rt, now=datetime.now(UTC), limit=1)  # connect and warm up: nothing is due
        print("ready", flush=True)
        until = float(sys.stdin.readline())
        while True:
            counts = run_due(rt, now=datetime.now(UTC), limit=settings.step_batch_size, hook=hook)
            committed = time.time()
            # A step counts once its transaction committed (run_due returned).
            fired.extend((due, committed) for due in pending)
            pending.clear()
            if not counts:
                if time.time() > until:
                    break
                time.sleep(poll)  # idle: the worker's poll interval
    finally:
        rt.close()
    Path(out).write_text(json.dumps(fired))


class Workers:
    """`n` worker processes, started and warmed up before any step is due."""

    def __init__(self, url: str, n: int, *, poll: float, fire_batch: int) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="bench-sched-"))
        self.outs = [self.folder / f"worker{i}.json" for i in range(n)]
        env = {**os.environ, "GRIDLINE_STEP_FIRE_BATCH": str(fire_batch)}
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.bench_scheduler", "--worker", url, str(poll), str(o)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for o in self.outs
        ]
        for proc in self.procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit("a worker did not start")

    def run_until(self, until: float) -> list[tuple[float, float]]:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{until}\n")
            proc.stdin.flush()
        fired: list[tuple[float, float]] = []
        for proc, out in zip(self.procs, self.outs, strict=True):
            if proc.wait() != 0:
                raise SystemExit(f"worker exited with {proc.returncode}")
            fired += [(d, c) for d, c in json.loads(out.read_text())]
            out.unlink()
        self.folder.rmdir()
        return fired


def _check_exactly_once(url: str, due_ids: list[int]) -> None:
    from app.db import make_engine
    from app.models.cases import CaseEvent
    from app.models.deadlines import ScheduledStep

    engine = make_engine(url)
    with engine.connect() as conn:
        events = dict(
            conn.execute(
                select(CaseEvent.case_id, func.count())
                .where(CaseEvent.kind == "claim_overdue")
                .group_by(CaseEvent.case_id)
            ).all()
        )
        undone = conn.scalar(
            select(func.count()).where(
                ScheduledStep.kind == "claim_overdue",
                ScheduledStep.case_id.in_(due_ids),
                ScheduledStep.done_at.is_(None),
            )
        )
    engine.dispose()
    wrong = [i for i in due_ids if events.get(i) != 1]
    extra = set(events) - set(due_ids)
    if wrong or extra or undone:
        raise SystemExit(
            f"NOT exactly once: {len(wrong)} cases without exactly one event, "
            f"{len(extra)} fired that were not due, {undone} steps undone"
        )


def _copy_db(admin_url: str, template: str, name: str) -> None:
    from app.db import make_engine

    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()


def _set_due(url: str, case_ids: list[int], dues: list[datetime]) -> None:
    from app.db import make_engine
    from app.models.cases import Case
    from app.models.deadlines import ScheduledStep

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            update(ScheduledStep)
            .where(ScheduledStep.kind == "claim_overdue")
            .where(ScheduledStep.case_id == bindparam("cid"))
            .values(due_at=bindparam("due")),
            [{"cid": c, "due": d} for c, d in zip(case_ids, dues, strict=True)],
        )
        conn.execute(
            update(Case).where(Case.id == bindparam("cid")).values(claim_due_at=bindparam("due")),
            [{"cid": c, "due": d} for c, d in zip(case_ids, dues, strict=True)],
        )
    engine.dispose()


def _pick(url: str, count: int, *, offset: int) -> list[int]:
    """`count` case ids spread over the city (every k-th case)."""
    from app.db import make_engine
    from app.models.cases import Case

    engine = make_engine(url)
    with engine.connect() as conn:
        ids = list(conn.scalars(select(Case.id).order_by(Case.id)))
    engine.dispose()
    step = max(1, len(ids) // count)
    return ids[offset::step][:count]


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def burst(
    cluster: Any, template: str, args: argparse.Namespace, run: int, *, fire_batch: int
) -> dict[str, float]:
    name = f"burst_{run}_{fire_batch}"
    _copy_db(cluster.admin_url, template, name)
    url = cluster.url(name)
    ids = _pick(url, args.due, offset=0)
    workers = Workers(url, args.workers, poll=args.poll, fire_batch=fire_batch)
    moment = datetime.now(UTC) + timedelta(seconds=args.lead)
    _set_due(url, ids, [moment] * len(ids))
    meter = cpu.Meter(groups={})
    meter.start()  # the workers idle until the moment; the setup before is not counted
    fired = workers.run_until(moment.timestamp() + 1)
    meter.stop()
    _check_exactly_once(url, ids)
    last = max(c for _, c in fired)
    lags = [c - d for d, c in fired]
    return {
        "steps": len(fired),
        "all_fired_s": last - moment.timestamp(),
        "steps_per_s": len(fired) / (last - moment.timestamp()),
        "lag_p50_s": _quantile(lags, 0.5),
        "machine_ms_per_step": meter.per(len(fired))["machine"],
    }


def steady(cluster: Any, template: str, args: argparse.Namespace, run: int) -> dict[str, float]:
    name = f"steady_{run}"
    _copy_db(cluster.admin_url, template, name)
    url = cluster.url(name)
    count = int(args.steady_rate * args.steady_seconds)
    ids = _pick(url, count, offset=1)
    workers = Workers(url, args.workers, poll=args.poll, fire_batch=args.fire_batch[0])
    start = datetime.now(UTC) + timedelta(seconds=args.lead)
    dues = [start + timedelta(seconds=i / args.steady_rate) for i in range(len(ids))]
    _set_due(url, ids, dues)
    fired = workers.run_until(dues[-1].timestamp() + 1)
    _check_exactly_once(url, ids)
    lags = [c - d for d, c in fired]
    return {
        "steps": len(fired),
        "lag_p50_s": _quantile(lags, 0.5),
        "lag_p99_s": _quantile(lags, 0.99),
        "lag_max_s": max(lags),
    }


# ---------------------------------------------------------------- report


def summary(
    args: argparse.Namespace,
    machine: str,
    seed: dict[str, Any],
    bursts: dict[int, list[dict[str, float]]],
    steadies: list[dict[str, float]],
) -> str:
    first = bursts[args.fire_batch[0]]
    each = [
        line
        for size, runs in bursts.items()
        for line in (
            f"| {args.due:,} steps due at one moment, {size} to a transaction: all fired after "
            f"| {report.median([r['all_fired_s'] for r in runs]):.1f} s | < 60 s |",
            f"| … throughput | {report.median([r['steps_per_s'] for r in runs]):.0f} steps/s | |",
            "| … machine CPU per step (all processes) | "
            f"{report.median([r['machine_ms_per_step'] for r in runs]):.1f} ms | |",
        )
    ]
    argv = " ".join(sys.argv[1:])
    lines = [
        SECTION,
        "",
        f"Command: `python -m bench.bench_scheduler {argv}`  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  ",
        f"Machine: {machine}  ",
        f"PostgreSQL: throwaway cluster with fsync and synchronous_commit on; "
        f"{args.workers} worker processes (`app.deadlines.scheduler.run_due` with the real clock), "
        f"idle poll {args.poll} s, "
        f"`step_batch_size` {args.lease_batch}; the steady load with `step_fire_batch` "
        f"{args.fire_batch[0]} (steps fired in one transaction).",
        "",
        f"Seeded {args.cases:,} open cases over {seed['grids']:,} grids of the Zhoushan-sized "
        f"city ({seed['seed_seconds']} s). Every due step was checked to have fired exactly once.",
        "",
        f"| measure (median of {args.runs} runs) | value | target |",
        "|---|---|---|",
        *each,
        f"| steady {args.steady_rate:g} steps/s for {args.steady_seconds:g} s: lag p50 | "
        f"{report.median([r['lag_p50_s'] for r in steadies]) * 1000:.0f} ms | |",
        f"| … lag p99 | {report.median([r['lag_p99_s'] for r in steadies]) * 1000:.0f} ms "
        "| < 2 s |",
        f"| … lag max | {report.median([r['lag_max_s'] for r in steadies]) * 1000:.0f} ms | |",
        "",
        "Each run: "
        + "; ".join(
            f"burst {b['all_fired_s']:.1f} s, steady p99 {s['lag_p99_s'] * 1000:.0f} ms"
            for b, s in zip(first, steadies, strict=True)
        )
        + ".",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2], float(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--poll", type=float, default=0.25, help="idle poll interval, s")
    parser.add_argument("--lead", type=float, default=5.0, help="s from setup to the due time")
    parser.add_argument("--steady-rate", type=float, default=50.0)
    parser.add_argument("--steady-seconds", type=float, default=60.0)
    parser.add_argument("--lease-batch", type=int, default=100, help="step_batch_size")
    parser.add_argument(
        "--fire-batch", type=int, nargs="+", default=[20], help="step_fire_batch value(s)"
    )
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    # The worker processes read their settings from the environment.
    os.environ["GRIDLINE_STEP_BATCH_SIZE"] = str(args.lease_batch)

    sys.path.insert(0, str(ROOT))
    from app.db import make_engine
    from app.migrate import upgrade
    from tests.pg import start_cluster

    machine = f"{report.machine()}, load average at the start {report.loadavg()}"
    cluster = start_cluster(durable=True)
    try:
        admin = make_engine(cluster.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE seeded"))
        admin.dispose()
        url = cluster.url("seeded")
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        t0 = time.perf_counter()
        _import_city(url)
        print(f"city imported in {time.perf_counter() - t0:.1f} s", flush=True)
        seed = _seed(url, cases=args.cases, now=datetime.now(UTC))
        print(f"seeded: {seed}", flush=True)
        bursts: dict[int, list[dict[str, float]]] = {size: [] for size in args.fire_batch}
        steadies = []
        for run in range(args.runs):
            # In turns: each value goes first in some runs, so drift shows.
            order = args.fire_batch if run % 2 == 0 else args.fire_batch[::-1]
            for size in order:
                b = burst(cluster, "seeded", args, run, fire_batch=size)
                print(f"run {run + 1} burst, {size} to a transaction: {b}", flush=True)
                bursts[size].append(b)
            s = steady(cluster, "seeded", args, run)
            print(f"run {run + 1} steady: {s}", flush=True)
            steadies.append(s)
        section = summary(args, machine, seed, bursts, steadies)
        print(section)
        if args.write:
            report.write_section("scheduler", section)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
