"""Where the worker's CPU goes for one resident text: cProfile over `process_one`.

    .venv/bin/python -m bench.profile_worker [--messages 300] [--top 35]
        [--backend sqlite|postgresql] [--no-profile] [--send | --steps]

Seeds the demo city into a fresh database (SQLite file, or a throwaway
PostgreSQL cluster from tests/pg.py) with one registered household per
message, stores `--messages` texts as the webhook does, then processes them
one by one (`app.worker.loop.process_one`: routing, the case, its forwards
and ack in the outbox; no sending). Prints CPU ms per message, SQL
statements per message, and (unless `--no-profile`) the top functions by
cumulative time under cProfile. `--send` then sends the outbox they wrote
(`send_due`, the real twilio client against tests/fake_twilio.py over HTTP)
and reports the sender's CPU per message the same way. `--steps` instead
makes every case's claim deadline due and fires them (`run_due`: each step
texts the grid's team and the town office on duty), per step.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import pstats
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, update

from app.db import unit_of_work
from app.deadlines.scheduler import run_due
from app.intake.store import InboundSms, store
from app.models.deadlines import ScheduledStep
from app.runtime import Runtime
from app.settings import Settings
from app.worker.loop import process_one, send_due
from bench.servers import resident_phone, scratch_database, seed_city
from sms.twilio_gateway import TwilioGateway
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--no-profile", action="store_true", help="CPU and statements only")
    parser.add_argument("--statements", action="store_true", help="list statements by count")
    parser.add_argument("--send", action="store_true", help="profile sending the outbox instead")
    parser.add_argument("--steps", action="store_true", help="profile firing claim deadlines")
    parser.add_argument("--dump", help="write the cProfile stats to this file")
    args = parser.parse_args()
    with scratch_database(args.backend, "profile") as url:
        seed_city(url, residents=args.messages)
        rt = Runtime.build(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
        statements: collections.Counter[str] = collections.Counter()

        def count(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
            statements[" ".join(sql.split())[:110]] += 1

        try:
            with unit_of_work(rt.sessions) as session:
                for n in range(args.messages):
                    sms = InboundSms(
                        message_sid=f"SM{n:032d}",
                        from_phone=resident_phone(n),
                        to_phone=None,
                        body=f"楼道灯坏了，第{n}户",
                        received_at=datetime.now(UTC),
                    )
                    store(session, sms)
            # The first message warms caches (the roster, compiled SQL).
            process_one(rt)
            profile = cProfile.Profile()
            if args.send:
                while process_one(rt) is not None:
                    pass
                done = args.messages - 1
                stack = contextlib.ExitStack()
                fake = stack.enter_context(FakeTwilio.serve())
                gateway = TwilioGateway(
                    account_sid=ACCOUNT_SID,
                    auth_token=AUTH_TOKEN,
                    from_number="+8657000000",
                    api_base=fake.base_url,
                    timeout=10,
                )
                what = "sent the SMS of"
            elif args.steps:
                while process_one(rt) is not None:
                    pass
                with unit_of_work(rt.sessions) as session:
                    session.execute(
                        update(ScheduledStep)
                        .where(ScheduledStep.kind == "claim_overdue")
                        .values(due_at=datetime.now(UTC))
                    )
                what = "fired the claim deadlines of"
            event.listen(rt.engine, "before_cursor_execute", count)
            started, wall = time.process_time(), time.perf_counter()
            if not args.no_profile:
                profile.enable()
            if args.send:
                with stack:
                    while send_due(rt, gateway, now=datetime.now(UTC)):
                        pass
            elif args.steps:
                done = run_due(rt, now=datetime.now(UTC), limit=10**6).get("fired", 0)
            else:
                what, done = "processed", 0
                while process_one(rt) is not None:
                    done += 1
            profile.disable()
            cpu = (time.process_time() - started) * 1000 / max(done, 1)
            elapsed = (time.perf_counter() - wall) * 1000 / max(done, 1)
        finally:
            rt.close()
    under = "" if args.no_profile else " (under cProfile)"
    total = sum(statements.values())
    print(
        f"{args.backend}: {what} {done} messages: {cpu:.1f} ms of CPU, "
        f"{elapsed:.1f} ms of wall time and {total / max(done, 1):.1f} SQL statements each{under}"
    )
    if args.statements:
        for sql, n in statements.most_common():
            print(f"{n / max(done, 1):6.2f}  {sql}")
    if not args.no_profile:
        if args.dump:
            profile.dump_stats(args.dump)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
