"""Acting on one stored message: a team member's command, or a resident's
request behind the flood guard. The caller's transaction holds it all."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.context import Ctx
from app.inbound import guards
from app.inbound.members import handle_worker
from app.inbound.residents import handle_resident
from app.models.cases import Case, CaseParticipant
from app.models.directory import Member
from app.models.messages import InboundMessage


def _on_a_team(session: Session, phone: str) -> bool:
    """An active member, or a participant of an open or claimed case (an
    office's phone, say): their texts are team commands. One query."""
    member = exists().where(Member.phone == phone, Member.active.is_(True))
    participant = (
        exists()
        .where(CaseParticipant.phone == phone, CaseParticipant.case_id == Case.id)
        .where(Case.status.in_(("open", "claimed")))
    )
    return bool(session.scalar(select(member | participant)))


def process(ctx: Ctx, message: InboundMessage) -> None:
    """Act on one stored message; the caller commits (or rolls back) it all."""
    ctx.inbound_id = message.id
    sender = message.from_phone
    # The people doing the work are never throttled: in a surge a grid
    # worker sends a 收到 and a 办结 per case, far over a resident's rate. An
    # auto-responder on a member's phone is stopped by content instead (the
    # loop guards on what we send back: app/delivery/suppression.py).
    if _on_a_team(ctx.session, sender):
        case = handle_worker(ctx, sender, message.body)
    elif guards.flooded(ctx, message):  # stored, marked throttled, not acted on
        return
    else:
        case = handle_resident(ctx, sender, message.body)
    message.case_id = case.id if case is not None else None
    message.status = "processed"
    message.processed_at = ctx.now
