"""Load without loss (issue #6): signed webhooks at concurrency 50 against a real
`gridline serve` process, a tenth of them delivered twice (the same MessageSid
again, half of them while the first delivery is still in flight, half after it
was answered, as a gateway that timed out retries).

The contract: no 5xx; every answered message stored exactly once; each one
processed into exactly one case (every sender is a distinct registered
resident), with its forward to the grid's team in the outbox and one
acknowledgement to the resident, never two.

Bounded for the normal suite: `GRIDLINE_LOAD_MESSAGES` (default 200) distinct
messages; the issue's figure is `GRIDLINE_LOAD_MESSAGES=5000`.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from bench.loadgen import run_closed, webhook
from bench.servers import gridline_server, resident_phone, running, wait_for
from tests.load.checks import assert_each_processed_once, read, unprocessed

pytestmark = pytest.mark.slow

MESSAGES = int(os.environ.get("GRIDLINE_LOAD_MESSAGES", "200"))
CONCURRENCY = 50
DUPLICATES = 0.10
# Processing costs tens of ms of CPU per message (routing, case, outbox rows):
# the deadline grows with the load.
PROCESS_DEADLINE = 60 + MESSAGES * 0.25


def test_no_message_lost_or_doubled_under_load(load_db: str, tmp_path: Path) -> None:
    server = gridline_server(load_db, tmp_path, GRIDLINE_WORKER_POLL_SECONDS="0.2")
    rng = random.Random(6)
    with running(server):
        hooks = [
            webhook(server.base_url, sender=resident_phone(n), body=f"楼道灯坏了，第{n}户")
            for n in range(MESSAGES)
        ]
        resent = rng.sample(range(MESSAGES), int(MESSAGES * DUPLICATES))
        # Half the copies right behind their original (in flight together on
        # two connections), half once everything else has been answered.
        payloads = []
        together = set(resent[: len(resent) // 2])
        for n, hook in enumerate(hooks):
            payloads.append(hook.payload)
            if n in together:
                payloads.append(hook.payload)
        payloads += [hooks[n].payload for n in resent[len(resent) // 2 :]]

        started = time.monotonic()
        results = asyncio.run(run_closed(server.base_url, payloads, concurrency=CONCURRENCY))
        ingest = time.monotonic() - started
        statuses = Counter(r.status for r in results)
        assert statuses == {200: len(payloads)}, statuses  # no 5xx, no refusal, no reset

        wait_for(
            lambda: unprocessed(load_db) == 0,
            timeout=PROCESS_DEADLINE,
            what="the worker to process every message",
            pause=0.25,
        )
        processed = time.monotonic() - started
    stored = read(load_db)
    assert len(stored.inbound) == MESSAGES  # the copies stored nothing
    assert_each_processed_once(stored, {h.sid: h.sender for h in hooks})
    assert len(stored.cases) == MESSAGES
    print(
        f"\n{len(payloads)} webhooks ({len(payloads) - MESSAGES} copies) in {ingest:.1f} s "
        f"({len(payloads) / ingest:.0f}/s), all processed after {processed:.1f} s"
    )
