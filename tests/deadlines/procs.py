"""Start worker processes (tests/deadlines/worker_proc.py) and collect their results."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Finished:
    returncode: int
    lines: list[str]
    stderr: str

    @property
    def result(self) -> dict[str, int]:
        counts: dict[str, int] = json.loads(self.lines[-1])
        return counts


def run_workers(
    url: str,
    now: datetime,
    *,
    count: int = 1,
    batch: int = 10,
    fire_batch: int | None = None,
    crash_after: int | None = None,
) -> list[Finished]:
    """Start `count` workers, wait until each is ready, release them together, wait for all."""
    argv = [sys.executable, "-m", "tests.deadlines.worker_proc", url, now.isoformat()]
    argv += ["--batch", str(batch)]
    if fire_batch is not None:
        argv += ["--fire-batch", str(fire_batch)]
    if crash_after is not None:
        argv += ["--crash-after", str(crash_after)]
    # stderr goes to files: a pipe nobody reads while we wait on another
    # process would fill up and block its writer mid-transaction.
    errs = [tempfile.TemporaryFile(mode="w+") for _ in range(count)]  # noqa: SIM115 (closed below)
    procs = [
        subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True
        )
        for err in errs
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == "ready", line
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        finished = []
        for proc, err in zip(procs, errs, strict=True):
            out, _ = proc.communicate(timeout=300)
            err.seek(0)
            lines = [x for x in out.splitlines() if x.strip()]
            finished.append(Finished(proc.returncode, lines, err.read()))
        return finished
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for err in errs:
            err.close()
