"""Loop guards on what Gridline sends by itself.

An auto-responder answering our automatic replies (acks, help texts, errors)
would ping-pong with us for ever. Two guards stop it, both decided from rows,
so they hold across workers:

- a cap of `auto_reply_cap_per_hour` automatic replies to one number per
  rolling hour;
- the same text from the same number again within `auto_reply_repeat_seconds`
  gets no automatic reply, and is not echoed again to the other side (the
  team's `forward_append`, the resident's `relay_resident`), which is what
  stops two auto-responders talking through us. The message still does what
  it says (a claim is a claim); only the automatic texts are held back.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select

from app.context import Ctx
from app.models.messages import InboundMessage, OutboundMessage
from routing.delivery import AUTO_REPLIES, ECHOES, guarded, suppression
from sms.phones import mask_phone

log = logging.getLogger("gridline.guards")

CAP_WINDOW = timedelta(hours=1)


def _message(ctx: Ctx) -> InboundMessage | None:
    if ctx.inbound_id is None:
        return None
    return ctx.session.get(InboundMessage, ctx.inbound_id)


def is_repeat(ctx: Ctx, message: InboundMessage) -> bool:
    """The same text came from the same number a moment ago (an auto-responder)."""
    window = ctx.rt.settings.auto_reply_repeat_seconds
    if window <= 0:
        return False
    key = ("gridline.repeat", message.id)
    cached = ctx.session.info.get(key)
    if cached is None:
        earlier = select(InboundMessage.id).where(
            InboundMessage.from_phone == message.from_phone,
            InboundMessage.received_at >= message.received_at - timedelta(seconds=window),
            InboundMessage.received_at <= message.received_at,
            InboundMessage.id < message.id,
            InboundMessage.body == message.body,
        )
        with ctx.session.no_autoflush:  # inbound rows: this transaction writes none before
            cached = ctx.session.scalar(earlier.limit(1)) is not None
        ctx.session.info[key] = cached
    return bool(cached)


def _auto_replies_sent(ctx: Ctx, to: str) -> int:
    """Automatic replies to `to` in the last hour: those written, and those
    this transaction has queued (counted here rather than flushed for the query)."""
    with ctx.session.no_autoflush:
        sent = ctx.session.scalar(
            select(func.count()).where(
                OutboundMessage.to_phone == to,
                OutboundMessage.created_at > ctx.now - CAP_WINDOW,
                OutboundMessage.template.in_(AUTO_REPLIES),
            )
        )
    queued = sum(
        1
        for row in ctx.session.new
        if isinstance(row, OutboundMessage) and row.to_phone == to and row.template in AUTO_REPLIES
    )
    return int(sent or 0) + queued


def suppress(ctx: Ctx, to: str, template: str) -> bool:
    """True when this SMS must not be sent: an automatic reply or echo that would
    feed a loop (the rule: `routing.delivery.suppression`). Only SMS caused by
    an inbound message are ever held back."""
    message = _message(ctx)
    if message is None:
        return False
    to_sender = to == message.from_phone
    if not guarded(template, to_sender=to_sender):
        return False
    cap = ctx.rt.settings.auto_reply_cap_per_hour
    reason = suppression(
        template,
        to_sender=to_sender,
        repeat=lambda: is_repeat(ctx, message),
        replies_this_hour=lambda: _auto_replies_sent(ctx, to),
        cap_per_hour=cap,
    )
    if reason == "repeat" and template in ECHOES:
        log.info("not echoing a repeated text from %s", mask_phone(message.from_phone))
    elif reason == "repeat":
        log.info("no %s to %s: the same text again", template, mask_phone(to))
    elif reason == "cap":
        log.warning("no %s to %s: %d automatic replies this hour", template, mask_phone(to), cap)
    return reason is not None
