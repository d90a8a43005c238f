"""Where the worker's CPU goes for one resident text: cProfile over `process_one`.

    .venv/bin/python -m bench.profile_worker [--messages 300] [--top 35]

Seeds the demo city into a fresh SQLite file with one registered household
per message, stores `--messages` texts as the webhook does, then processes
them one by one (`app.worker.loop.process_one`: routing, the case, its
forwards and ack in the outbox; no sending) under cProfile. Prints CPU ms
per message and the top functions by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from app.db import unit_of_work
from app.intake.store import InboundSms, store
from app.runtime import Runtime
from app.settings import Settings
from app.worker.loop import process_one
from bench.servers import resident_phone, seed_city


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'gridline.db'}"
        seed_city(url, residents=args.messages)
        rt = Runtime.build(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
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
            profile = cProfile.Profile()
            started = time.process_time()
            done = 0
            profile.enable()
            while process_one(rt) is not None:
                done += 1
            profile.disable()
            cpu = (time.process_time() - started) * 1000 / max(done, 1)
        finally:
            rt.close()
    print(f"processed {done} messages: {cpu:.1f} ms of CPU each (under cProfile)")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
