"""What the load and fault tests read back from the database after the run."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select

from app.db import make_engine, make_sessionmaker
from app.models.cases import Case
from app.models.messages import InboundMessage, OutboundMessage


@dataclass
class Stored:
    inbound: list[tuple[str, str, str, int | None]]  # sid, sender, status, case id
    cases: list[tuple[int, str, str]]  # id, resident phone, status
    outbox: list[tuple[int | None, str, str, int | None]]  # case id, template, to, inbound id

    @property
    def sids(self) -> Counter[str]:
        return Counter(sid for sid, _f, _s, _c in self.inbound)

    def forwards(self) -> Counter[int]:
        return Counter(c for c, template, _t, _i in self.outbox if template == "forward" and c)

    def acks_to(self) -> Counter[str]:
        return Counter(to for _c, template, to, _i in self.outbox if template == "ack")


def read(url: str) -> Stored:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            inbound = session.execute(
                select(
                    InboundMessage.message_sid,
                    InboundMessage.from_phone,
                    InboundMessage.status,
                    InboundMessage.case_id,
                )
            ).all()
            cases = session.execute(select(Case.id, Case.resident_phone, Case.status)).all()
            outbox = session.execute(
                select(
                    OutboundMessage.case_id,
                    OutboundMessage.template,
                    OutboundMessage.to_phone,
                    OutboundMessage.inbound_id,
                )
            ).all()
    finally:
        engine.dispose()
    return Stored(
        inbound=[tuple(r) for r in inbound],  # type: ignore[misc]
        cases=[tuple(r) for r in cases],  # type: ignore[misc]
        outbox=[tuple(r) for r in outbox],  # type: ignore[misc]
    )


def unprocessed(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return len(
                conn.execute(
                    select(InboundMessage.id).where(InboundMessage.status == "received")
                ).all()
            )
    finally:
        engine.dispose()


def assert_each_processed_once(stored: Stored, acknowledged: dict[str, str]) -> None:
    """Every acknowledged SID (sid → sender) stored once, processed, and made
    exactly one case for its (distinct, registered) sender with a forward to the
    grid's team and one acknowledgement to the resident."""
    sids = stored.sids
    missing = set(acknowledged) - set(sids)
    assert not missing, f"{len(missing)} acknowledged messages not stored"
    assert max(sids.values()) == 1, "a MessageSid stored twice"
    by_sid = {sid: (sender, status, case) for sid, sender, status, case in stored.inbound}
    statuses = Counter(by_sid[sid][1] for sid in acknowledged)
    assert statuses == {"processed": len(acknowledged)}, statuses
    cases = {cid: phone for cid, phone, _status in stored.cases}
    unlinked = [sid for sid in acknowledged if by_sid[sid][2] is None]
    assert not unlinked, f"{len(unlinked)} processed messages without a case"
    case_of = {sid: int(by_sid[sid][2] or 0) for sid in acknowledged}
    # One case per message: every sender is a distinct registered resident.
    assert len(set(case_of.values())) == len(acknowledged)
    assert all(cases[case_of[sid]] == sender for sid, sender in acknowledged.items())
    forwards = stored.forwards()
    unforwarded = [sid for sid in acknowledged if forwards[case_of[sid]] < 1]
    assert not unforwarded, f"{len(unforwarded)} cases without a forward in the outbox"
    acks = stored.acks_to()
    assert all(acks[sender] == 1 for sender in acknowledged.values()), "an ack missing or doubled"
