"""Guards against hostile or runaway senders (issue #6).

Flood: a number that texts more than `inbound_flood_per_minute` messages
within a minute has the extra messages stored (nothing is lost: they stay in
`inbound_messages` with status `throttled`, linked to the sender's case) but
not acted on one by one; the sender gets at most one "slow down" SMS an hour
and the case one `throttled` timeline event.

Loops: an auto-responder answering our automatic replies (acks, help texts,
errors) would ping-pong with us for ever. Two guards stop it, both decided
from rows, so they hold across workers:

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
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select

from app import memo
from app.cases import lookups as case_lookups
from app.models.messages import InboundMessage, OutboundMessage
from sms.phones import mask_phone

if TYPE_CHECKING:
    from app.cases.changes import Ctx

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

FLOOD_WINDOW = timedelta(minutes=1)
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


def _queued(ctx: Ctx, to: str, templates: frozenset[str]) -> int:
    """SMS to `to` of `templates` within the hour that a batch of messages has
    queued and not written yet (`memo.defer_insert`): they count like rows."""
    since = ctx.now - CAP_WINDOW
    return sum(
        1
        for row in memo.deferred(ctx.session, OutboundMessage)
        if row["to_phone"] == to and row["template"] in templates and row["created_at"] > since
    )


def _auto_replies_sent(ctx: Ctx, to: str) -> int:
    stored = memo.cached(
        ctx.session,
        ("auto_replies_sent", to, ctx.now),
        lambda: int(
            ctx.session.scalar(
                select(func.count()).where(
                    OutboundMessage.to_phone == to,
                    OutboundMessage.created_at > ctx.now - CAP_WINDOW,
                    OutboundMessage.template.in_(AUTO_REPLIES),
                )
            )
            or 0
        ),
    )
    return stored + _queued(ctx, to, AUTO_REPLIES)


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


def flooded(ctx: Ctx, message: InboundMessage) -> bool:
    """True when `message` is over its sender's rate: it is then marked `throttled`
    (kept, not acted on) and the sender told once to slow down."""
    limit = ctx.rt.settings.inbound_flood_per_minute
    if limit <= 0:
        return False
    session = ctx.session
    earlier = memo.cached(
        session,
        ("flood_earlier", message.id),
        lambda: session.scalar(
            select(func.count()).where(
                InboundMessage.from_phone == message.from_phone,
                InboundMessage.received_at > message.received_at - FLOOD_WINDOW,
                InboundMessage.received_at <= message.received_at,
                InboundMessage.id < message.id,
            )
        ),
    )
    if int(earlier or 0) < limit:
        return False
    from app.cases import (
        changes as cases,  # a cycle at import time: cases imports this module's callers
    )

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
    if told is None and not _queued(ctx, phone, frozenset({"slow_down"})):
        log.warning("flood from %s: more than %d messages a minute", mask_phone(phone), limit)
        ctx.send(case, phone, "slow_down")
        if case is not None:
            cases.record(ctx, case, "throttled", cases.Actor.system(), limit=limit)
    return True


def prefetch(ctx: Ctx, messages: list[InboundMessage]) -> None:
    """Answer the guards' questions for a batch of messages (one per sender) in
    two queries instead of three per message, into the transaction's memo.
    The same conditions as `flooded`, `is_repeat` and `_auto_replies_sent`,
    evaluated here on the few rows that can match: the senders' earlier
    messages within the flood window, and those with one of the batch's texts
    within the repeat window."""
    session = ctx.session
    if memo.table_of(session) is None or not messages:
        return
    settings = ctx.rt.settings
    phones = {m.from_phone for m in messages}
    last_id = max(m.id for m in messages)
    last_at = max(m.received_at for m in messages)
    first_at = min(m.received_at for m in messages)
    held = memo.enable(session)
    flood = settings.inbound_flood_per_minute > 0
    span = timedelta(seconds=settings.auto_reply_repeat_seconds)
    ranges: list[Any] = []
    if flood:
        ranges.append(InboundMessage.received_at >= first_at - FLOOD_WINDOW)
    if span:
        ranges.append(
            and_(
                InboundMessage.received_at >= first_at - span,
                InboundMessage.body.in_({m.body for m in messages}),
            )
        )
    rows: list[tuple[int, str, datetime, str]] = []
    if ranges:
        found = session.execute(
            select(
                InboundMessage.id,
                InboundMessage.from_phone,
                InboundMessage.received_at,
                InboundMessage.body,
            ).where(
                InboundMessage.from_phone.in_(phones),
                InboundMessage.received_at <= last_at,
                InboundMessage.id < last_id,
                or_(*ranges),
            )
        )
        rows = [(r[0], r[1], r[2], r[3]) for r in found]
    if flood:
        for m in messages:
            held[("flood_earlier", m.id)] = sum(
                1
                for id_, phone, at, _body in rows
                if phone == m.from_phone
                and m.received_at - FLOOD_WINDOW < at <= m.received_at
                and id_ < m.id
            )
    if span:
        for m in messages:
            session.info[("gridline.repeat", m.id)] = any(
                phone == m.from_phone
                and m.received_at - span <= at <= m.received_at
                and id_ < m.id
                and body == m.body
                for id_, phone, at, body in rows
            )
    if settings.auto_reply_cap_per_hour:
        counts = dict(
            session.execute(
                select(OutboundMessage.to_phone, func.count())
                .where(
                    OutboundMessage.to_phone.in_(phones),
                    OutboundMessage.created_at > ctx.now - CAP_WINDOW,
                    OutboundMessage.template.in_(AUTO_REPLIES),
                )
                .group_by(OutboundMessage.to_phone)
            ).all()
        )
        for phone in phones:
            held[("auto_replies_sent", phone, ctx.now)] = int(counts.get(phone, 0))
