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
from sms.phones import mask_phone

log = logging.getLogger("gridline.guards")

# Texts the platform sends on its own in answer to a message from that number.
AUTO_REPLIES = frozenset(
    {
        "ack",
        "ack_append",
        "ask_address",
        "ask_address_again",
        "ask_choice",
        "ask_part",
        "help_resident",
        "help_worker",
        "opted_out",
        "opted_in",
        "rated_thanks",
        "unknown_code",
        "not_on_case",
        "not_allowed",
        "no_open_case",
        "several_cases",
        "need_text",
        "unknown_grid",
        "already_claimed",
        "already_yours",
        "list",
        "duty",
        "duty_gap",
        "slow_down",
    }
)
# Texts that carry the sender's own words on to somebody else.
ECHOES = frozenset({"forward_append", "relay_resident"})

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
        cached = ctx.session.scalar(earlier.limit(1)) is not None
        ctx.session.info[key] = cached
    return bool(cached)


def _auto_replies_sent(ctx: Ctx, to: str) -> int:
    sent = ctx.session.scalar(
        select(func.count()).where(
            OutboundMessage.to_phone == to,
            OutboundMessage.created_at > ctx.now - CAP_WINDOW,
            OutboundMessage.template.in_(AUTO_REPLIES),
        )
    )
    return int(sent or 0)


def suppress(ctx: Ctx, to: str, template: str) -> bool:
    """True when this SMS must not be sent: an automatic reply or echo that would
    feed a loop. Only SMS caused by an inbound message are ever held back."""
    message = _message(ctx)
    if message is None:
        return False
    if template in ECHOES:
        if to != message.from_phone and is_repeat(ctx, message):
            log.info("not echoing a repeated text from %s", mask_phone(message.from_phone))
            return True
        return False
    if template not in AUTO_REPLIES or to != message.from_phone:
        return False
    # "Slow down" answers a flood, which may well be one text repeated.
    if template != "slow_down" and is_repeat(ctx, message):
        log.info("no %s to %s: the same text again", template, mask_phone(to))
        return True
    cap = ctx.rt.settings.auto_reply_cap_per_hour
    if cap and _auto_replies_sent(ctx, to) >= cap:
        log.warning("no %s to %s: %d automatic replies this hour", template, mask_phone(to), cap)
        return True
    return False
