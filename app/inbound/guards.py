"""The flood guard against runaway senders (residents and strangers; team
members' texts are never throttled: app/inbound/process.py).

Flood: a number that texts more than `inbound_flood_per_minute` messages
within a minute has the extra messages stored (nothing is lost: they stay in
`inbound_messages` with status `throttled`, linked to the sender's case) but
not acted on one by one; the sender gets at most one "slow down" SMS an hour
and the case one `throttled` timeline event.

The loop guards on what we send are in app/delivery/suppression.py.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select

from app.cases import lookups as case_lookups
from app.cases.changes import record
from app.context import Actor, Ctx
from app.delivery.send import send
from app.delivery.suppression import CAP_WINDOW
from app.models.messages import InboundMessage, OutboundMessage
from sms.phones import mask_phone

log = logging.getLogger("gridline.guards")

FLOOD_WINDOW = timedelta(minutes=1)


def flooded(ctx: Ctx, message: InboundMessage) -> bool:
    """True when `message` is over its sender's rate: it is then marked `throttled`
    (kept, not acted on) and the sender told once to slow down."""
    limit = ctx.rt.settings.inbound_flood_per_minute
    if limit <= 0:
        return False
    session = ctx.session
    earlier = session.scalar(
        select(func.count()).where(
            InboundMessage.from_phone == message.from_phone,
            InboundMessage.received_at > message.received_at - FLOOD_WINDOW,
            InboundMessage.received_at <= message.received_at,
            InboundMessage.id < message.id,
        )
    )
    if int(earlier or 0) < limit:
        return False

    phone = message.from_phone
    case = case_lookups.active_case_of_resident(session, phone)
    message.status = "throttled"
    message.processed_at = ctx.now
    message.case_id = case.id if case is not None else None
    told = session.scalar(
        select(OutboundMessage.id)
        .where(
            OutboundMessage.to_phone == phone,
            OutboundMessage.template == "slow_down",
            OutboundMessage.created_at > ctx.now - CAP_WINDOW,
        )
        .limit(1)
    )
    if told is None:
        log.warning("flood from %s: more than %d messages a minute", mask_phone(phone), limit)
        send(ctx, case, phone, "slow_down")
        if case is not None:
            record(ctx, case, "throttled", Actor.system(), limit=limit)
    return True
