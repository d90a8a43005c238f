"""Several workers on one database: each message once, one sender's messages in order."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from app.db import unit_of_work
from app.intake.store import InboundSms, store
from app.models.cases import Case, CaseEvent
from app.models.messages import InboundMessage
from app.worker.loop import process_inbound
from tests.factories import make_city
from tests.helpers import new_sid


def test_parallel_workers_keep_each_senders_order(rt):
    senders = [f"+861370000{i:04d}" for i in range(15)]
    with unit_of_work(rt.sessions) as session:
        make_city(session)
        # Each sender's messages stand next to each other, so that idle workers
        # would pick a sender's second message while its first is in progress.
        for phone in senders:
            for round_ in range(3):
                store(
                    session,
                    InboundSms(
                        message_sid=new_sid(),
                        from_phone=phone,
                        to_phone=None,
                        body=f"翁山新村3幢 第{round_}条",
                        params={},
                        received_at=rt.clock(),
                    ),
                )
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def work() -> None:
        try:
            barrier.wait()
            while True:
                done, failed = process_inbound(rt, now=rt.clock(), limit=5)
                assert failed == 0
                if done == 0:
                    with rt.sessions() as s:
                        left = s.scalar(
                            select(func.count()).where(InboundMessage.status == "received")
                        )
                    if not left:
                        return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == len(senders)
        for case in s.scalars(select(Case)):
            texts = [
                e.detail["text"]
                for e in s.scalars(
                    select(CaseEvent)
                    .where(
                        CaseEvent.case_id == case.id, CaseEvent.kind.in_(("received", "message"))
                    )
                    .order_by(CaseEvent.id)
                )
            ]
            assert texts == [f"翁山新村3幢 第{i}条" for i in range(3)]
        assert s.scalar(select(func.count()).where(InboundMessage.status != "processed")) == 0
