from sqlalchemy import select

from app.db import unit_of_work
from app.intake.store import InboundSms, store
from app.models.cases import Case
from app.models.messages import OutboundMessage
from app.worker.loop import run_once
from sms.console import ConsoleGateway
from tests.factories import RESIDENT, WORKER_A, make_city


def test_resident_text_is_forwarded(rt, clock):
    with unit_of_work(rt.sessions) as s:
        make_city(s)
        store(
            s,
            InboundSms(
                message_sid="SM1",
                from_phone=RESIDENT,
                to_phone=None,
                body="楼道灯坏了",
                params={},
                received_at=clock.now,
            ),
        )
    run_once(rt, ConsoleGateway(), now=clock.now)
    with rt.sessions() as s:
        case = s.scalar(select(Case))
        assert case.status == "open" and case.grid.code == "DH-01"
        out = s.scalars(select(OutboundMessage).order_by(OutboundMessage.id)).all()
        assert [o.to_phone for o in out] == [WORKER_A, RESIDENT]
        assert all(o.status == "sent" for o in out)
