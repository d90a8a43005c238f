"""A worker process for the scheduler tests: the real step-firing loop, at a fixed `now`.

    python -m tests.deadlines.worker_proc URL NOW [--batch N] [--fire-batch N] [--crash-after N]

Prints `ready`, waits for a line on stdin (so that several processes start
firing together), runs `app.deadlines.scheduler.run_due` until nothing is due and prints
its counts as JSON (`--batch`: steps leased at once, `--fire-batch`: fired in
one transaction). With `--crash-after N` it fires N steps, then dies inside
the transaction of the next one, after its effects were written but before the
commit (`os._exit`: no cleanup, no rollback, like a SIGKILL).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime

from sqlalchemy.orm import object_session

from app.deadlines.scheduler import run_due
from app.models.deadlines import ScheduledStep
from app.runtime import Runtime
from app.settings import Settings

CRASH_EXIT = 137


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("now")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument(
        "--fire-batch", type=int, default=Settings.model_fields["step_fire_batch"].default
    )
    parser.add_argument("--crash-after", type=int, default=None)
    args = parser.parse_args()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=args.url,
        validate_signatures=False,
        step_fire_batch=args.fire_batch,
    )
    rt = Runtime.build(settings)
    now = datetime.fromisoformat(args.now)
    fired = 0

    def hook(step: ScheduledStep, outcome: str) -> None:
        nonlocal fired
        if args.crash_after is not None and fired >= args.crash_after:
            session = object_session(step)
            assert session is not None
            session.flush()  # the step's effects are written, not committed
            print(json.dumps({"crashing_in_step": step.id}), flush=True)
            os._exit(CRASH_EXIT)
        fired += 1

    print("ready", flush=True)
    sys.stdin.readline()
    try:
        counts = run_due(rt, now=now, limit=1_000_000, batch=args.batch, hook=hook)
    finally:
        rt.close()
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
