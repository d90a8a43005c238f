"""A compressed typhoon surge, played on an injected clock: are the people doing
the work ever silenced, and is every case claimed or escalated by its deadline?

    .venv/bin/python -m bench.bench_surge [--texts 240] [--seconds 120] [--grids 12]
        [--members 3] [--seed 1] [--backend sqlite|postgresql]

The hardening probe's scenario: `--texts` resident texts (one registered
household each) spread evenly over `--seconds`, over `--grids` grids of
`--members` members each. Every member a forward reaches answers it 5–70 s
later with `<code> 收到` (the first claims it, the others are told who did),
and the first 5–70 s after that with `<code> 办结 已处理`. Events run in time order; the
clock is set to each event's time, the text is stored as the webhook stores
it, and one worker pass (`run_once`: inbound, deadlines, sending) follows.
After the last answer the clock runs on past every claim deadline.

Prints (and writes with `--json`): members' texts by status, "slow down" SMS
to members, cases claimed by their claim deadline, resolved, escalated, and
any case left unclaimed at grid level past its deadline (must be 0).
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import re
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from app.db import make_engine, unit_of_work
from app.intake.store import InboundSms, store
from app.migrate import upgrade
from app.models.cases import Case
from app.models.messages import InboundMessage, OutboundMessage
from app.runtime import Runtime
from app.settings import Settings
from app.worker.loop import run_once
from bench.servers import scratch_database
from tests.conftest import Clock
from tests.factories import make_member, make_region, make_resident
from tests.helpers import RecordingGateway

CLAIM_HINT = re.compile(r"回复“(\d+) 收到”")
START = datetime(2026, 9, 14, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Zhoushan


def seed(rt: Runtime, *, grids: int, members: int, texts: int) -> dict[str, list[str]]:
    """The city: one county, two towns, `grids` grids; grid code → member phones."""
    team: dict[str, list[str]] = {}
    with unit_of_work(rt.sessions) as s:
        county = make_region(s, code="DH", name="定海区", level="county")
        towns = [
            make_region(s, code=f"DH-T{t}", name=f"第{t}街道", level="town", parent=county)
            for t in (1, 2)
        ]
        make_member(s, phone="+8613800000001", name="区值班", unit=county, role="office")
        for t, town in enumerate(towns):
            make_member(s, phone=f"+861380000001{t}", name="街道值班", unit=town, role="office")
        for g in range(grids):
            town = towns[g % 2]
            grid = make_region(s, code=f"G{g:02d}", name=f"第{g}网格", level="grid", parent=town)
            team[grid.code] = []
            for m in range(members):
                phone = f"+86139{g:02d}{m:02d}0000"
                make_member(s, phone=phone, name=f"网格员{g}-{m}", unit=grid)
                team[grid.code].append(phone)
            for n in range(g, texts, grids):
                make_resident(s, phone=resident(n), grid=grid, address=f"第{g}网格{n}号")
    return team


def resident(n: int) -> str:
    return f"+861376{n:07d}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=240)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--grids", type=int, default=12)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    with scratch_database(args.backend, "surge") as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        clock = Clock(START)
        rt = Runtime.build(Settings(_env_file=None, database_url=url), clock=clock)  # type: ignore[call-arg]
        try:
            figures = surge(rt, clock, args)
        finally:
            rt.close()
    figures["args"] = vars(args)
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, ensure_ascii=False, indent=2))
    if figures["members_texts"].get("throttled") or figures["grid_cases_past_claim_deadline"]:
        sys.exit(1)


def surge(rt: Runtime, clock: Clock, args: argparse.Namespace) -> dict[str, object]:
    team = seed(rt, grids=args.grids, members=args.members, texts=args.texts)
    grid_of = {phone: grid for grid, phones in team.items() for phone in phones}
    gateway = RecordingGateway()
    rng = random.Random(args.seed)
    events: list[tuple[float, int, str, str]] = []  # (second, order, phone, body)
    order = 0
    for n in range(args.texts):
        events.append((n * args.seconds / args.texts, order, resident(n), f"台风天{n}号门口积水"))
        order += 1
    heapq.heapify(events)
    answered: set[str] = set()
    sid = seen = 0
    while events:
        second, _, phone, body = heapq.heappop(events)
        clock.now = START + timedelta(seconds=second)
        with unit_of_work(rt.sessions) as s:
            sid += 1
            store(
                s,
                InboundSms(f"SM{sid:032x}", phone, None, body, clock.now),
            )
        run_once(rt, gateway)
        new, seen = gateway.sent[seen:], len(gateway.sent)
        for sms in new:
            found = CLAIM_HINT.search(sms.body)
            if not found or sms.to not in grid_of or found.group(1) in answered:
                continue
            code = found.group(1)
            answered.add(code)
            # Every member the forward reached answers 收到 (the first one claims,
            # the others are told who did); the first resolves it later.
            claims = sorted((second + rng.uniform(5, 70), m) for m in team[grid_of[sms.to]])
            claim_at, claimer = claims[0]
            for at, member in claims:
                order += 1
                heapq.heappush(events, (at, order, member, f"{code} 收到"))
            order += 1
            resolve_at = claim_at + rng.uniform(5, 70)
            heapq.heappush(events, (resolve_at, order, claimer, f"{code} 办结 已处理"))
    # Past every claim deadline: what nobody claimed has climbed the ladder.
    clock.now += timedelta(hours=2)
    run_once(rt, gateway)
    return figures(rt, set(grid_of), clock.now)


def figures(rt: Runtime, members: set[str], now: datetime) -> dict[str, object]:
    with rt.sessions() as s:
        inbound = s.execute(select(InboundMessage.from_phone, InboundMessage.status)).all()
        member_status = Counter(status for phone, status in inbound if phone in members)
        slow_down = s.scalar(
            select(func.count())
            .select_from(OutboundMessage)
            .where(OutboundMessage.template == "slow_down", OutboundMessage.to_phone.in_(members))
        )
        cases = s.scalars(select(Case)).all()
        claimed_in_time = sum(
            1
            for c in cases
            if c.claimed_at is not None
            and c.claim_due_at is not None
            and c.claimed_at <= c.claim_due_at
        )
        return {
            "resident_texts": sum(1 for phone, _ in inbound if phone not in members),
            "members_texts": dict(member_status),
            "slow_down_to_members": slow_down,
            "cases": len(cases),
            "claimed_by_deadline": claimed_in_time,
            "resolved_or_closed": sum(1 for c in cases if c.status in ("resolved", "closed")),
            "escalated": sum(1 for c in cases if c.level != "grid"),
            "grid_cases_past_claim_deadline": sum(
                1
                for c in cases
                if c.level == "grid"
                and c.status == "open"
                and c.claim_due_at is not None
                and c.claim_due_at < now
            ),
        }


if __name__ == "__main__":
    main()
