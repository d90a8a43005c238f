"""Acting on one stored message: the flood guard first, then a team member's
command or a resident's request. The caller's transaction holds it all."""

from __future__ import annotations

from app.cases import lookups as case_lookups
from app.context import Ctx
from app.directory import lookups as directory
from app.inbound import guards
from app.inbound.members import handle_worker
from app.inbound.residents import handle_resident
from app.models.messages import InboundMessage


def process(ctx: Ctx, message: InboundMessage) -> None:
    """Act on one stored message; the caller commits (or rolls back) it all."""
    ctx.inbound_id = message.id
    if guards.flooded(ctx, message):  # stored, marked throttled, not acted on
        return
    sender = message.from_phone
    is_worker = bool(directory.members_by_phone(ctx.session, sender)) or bool(
        case_lookups.cases_of_participant(ctx.session, sender)
    )
    if is_worker:
        case = handle_worker(ctx, sender, message.body)
    else:
        case = handle_resident(ctx, sender, message.body)
    message.case_id = case.id if case is not None else None
    message.status = "processed"
    message.processed_at = ctx.now
