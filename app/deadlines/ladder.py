"""The escalation ladder beyond the first deadlines.

grid on shift → whole grid team + town office → county-level office → (by an
office, through the API) city. This module holds the steps that keep a case
from waiting without an owner:

- `resend`: an unclaimed case at the top of the ladder (county or city) is
  texted again to the office at `resend_every` until someone claims it;
- `undelivered`: a notice about a case that the gateway reported
  `undelivered`/`failed` (or that could not be sent at all) brings in the next
  people on the ladder at once instead of waiting for the deadline;
- `not_satisfied`: a resident's `2` reopens the case with a shorter claim
  deadline; a second `2` escalates it.

Steps are rows fired by `app.deadlines.scheduler`; each writes its timeline event.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from app.cases import changes as cases
from app.cases import lookups as case_lookups
from app.cases import names
from app.context import Actor, Ctx
from app.delivery.send import send
from app.directory import rosters
from app.models.cases import Case, CaseEvent, CaseParticipant
from app.models.deadlines import ScheduledStep
from app.models.messages import InboundMessage, OutboundMessage
from routing import lifecycle
from sms.phones import mask_phone
from sms.templates import word

log = logging.getLogger("gridline.ladder")


def fire(ctx: Ctx, case: Case, step: ScheduledStep, action: str) -> str:
    """Carry out a ladder step's `action` (`routing.lifecycle.step_action`, which
    has checked the case's status and level); returns `fired` or `skipped`."""
    if action == "resend":
        return _resend(ctx, case)
    if action == "next_rung":
        return _undelivered(ctx, case, step)
    if action == "tell_writer":
        return _reply_undelivered(ctx, case, step)
    if action == "remind":
        return _remind(ctx, case)
    if action == "forward_rest":
        return _forward_rest(ctx, case, step)
    raise ValueError(f"not a ladder action: {action}")


def _resend(ctx: Ctx, case: Case) -> str:
    phones = case_lookups.participant_phones(ctx.session, case, level=case.level)
    level_word = word(f"level.{case.level}", ctx.locale)
    for phone in phones:
        send(ctx, case, phone, "resent_top", code=case.code, level=level_word, text=case.summary)
    cases.record(
        ctx,
        case,
        "resent",
        Actor.system(),
        level=case.level,
        reason="still unclaimed at the top of the ladder",
        notified=[mask_phone(p) for p in phones],
    )
    cases.schedule(ctx, case, "resend", ctx.now + cases.policy_of(ctx, case).resend_every)
    return "fired"


def _forward_rest(ctx: Ctx, case: Case, step: ScheduledStep) -> str:
    """The category's roles were texted first; unclaimed, the rest on duty now are."""
    already = set(case_lookups.participant_phones(ctx.session, case))
    rest = [p for p in (step.params or {}).get("phones", []) if p not in already]
    cases.add_participants(ctx, case, rest, reason="forwarded", known=already)
    who = names.resident_label(ctx, case)
    for phone in rest:
        send(ctx, case, phone, "forward", code=case.code, who=who, text=case.summary)
    cases.record(
        ctx,
        case,
        "forwarded",
        Actor.system(),
        grid=case.grid.code if case.grid else None,
        to=[mask_phone(p) for p in rest],
        reason=f"not claimed by the {case.category} roles first texted",
    )
    return "fired"


def _remind(ctx: Ctx, case: Case) -> str:
    """Before the resolution deadline: the claimant is reminded of it."""
    owner = case.claimed_by
    if not owner or owner.startswith("api:"):
        return "skipped"
    assert case.resolve_due_at is not None
    local = case.resolve_due_at.astimezone(ctx.rt.settings.tz)
    send(ctx, case, owner, "resolve_reminder", code=case.code, due=f"{local:%m-%d %H:%M}")
    cases.record(
        ctx,
        case,
        "reminded",
        Actor.system(),
        to=mask_phone(owner),
        due=case.resolve_due_at.isoformat(),
    )
    return "fired"


def _level_of(ctx: Ctx, case: Case, phone: str) -> str | None:
    return ctx.session.scalar(
        select(CaseParticipant.level).where(
            CaseParticipant.case_id == case.id, CaseParticipant.phone == phone
        )
    )


def _next_rung(ctx: Ctx, case: Case) -> list[str]:
    """Who at the case's level has not been sent the case yet."""
    tz = ctx.rt.settings.tz
    if case.level == "grid":
        assert case.grid is not None
        phones = [m.phone for m in rosters.members_of(ctx.session, case.grid.id)]
        if case.town is not None:
            office, _ = rosters.on_duty(ctx.session, case.town, now=ctx.now, tz=tz)
            phones += [m.phone for m in office]
    else:
        unit = cases.office_for(case, case.level)
        phones = [m.phone for m in rosters.members_of(ctx.session, unit.id)] if unit else []
    already = set(case_lookups.participant_phones(ctx.session, case))
    return [p for p in dict.fromkeys(phones) if p not in already]


def _undelivered(ctx: Ctx, case: Case, step: ScheduledStep) -> str:
    outbound_id = (step.params or {}).get("outbound_id")
    row = ctx.session.get(OutboundMessage, outbound_id) if outbound_id is not None else None
    if row is None:
        return "skipped"
    if _level_of(ctx, case, row.to_phone) != case.level:
        return "skipped"  # the case has moved on from the level the notice was for
    failed = mask_phone(row.to_phone)
    status = row.delivery_status or row.status
    nxt = _next_rung(ctx, case)
    if nxt:
        cases.add_participants(ctx, case, nxt, reason="team" if case.level == "grid" else "office")
        for phone in nxt:
            send(ctx, case, phone, "undelivered_next", code=case.code, text=case.summary)
        cases.record(
            ctx,
            case,
            "undelivered",
            Actor.system(),
            to=failed,
            status=status,
            reason="notice not delivered: next on the ladder texted at once",
            notified=[mask_phone(p) for p in nxt],
        )
        return "fired"
    cases.record(ctx, case, "undelivered", Actor.system(), to=failed, status=status, notified=[])
    if case.level in ("grid", "town"):
        # Nobody else at this level: the next level is told now, not at the deadline.
        cases.escalate(ctx, case, Actor.system(), reason="notice not delivered", to_level="county")
    return "fired"


def _reply_undelivered(ctx: Ctx, case: Case, step: ScheduledStep) -> str:
    """A reply to the resident did not arrive: on the case's timeline (what an
    office that wrote it sees), and the member who texted it is told."""
    outbound_id = (step.params or {}).get("outbound_id")
    row = ctx.session.get(OutboundMessage, outbound_id) if outbound_id is not None else None
    if row is None:
        return "skipped"
    # Refused by the gateway, or sent and then reported undelivered.
    status = "failed" if row.status == "failed" else "undelivered"
    inbound = ctx.session.get(InboundMessage, row.inbound_id) if row.inbound_id else None
    writer = inbound.from_phone if inbound is not None else None
    told = writer is not None and writer != case.resident_phone
    cases.record(
        ctx,
        case,
        "undelivered",
        Actor.system(),
        to=mask_phone(row.to_phone),
        status=row.delivery_status or row.status,
        reason="reply to the resident not delivered",
        error=row.error_code,
        notified=[mask_phone(writer)] if told and writer else [],
    )
    if told and writer:
        outcome = word(f"delivery.{status}", ctx.locale)
        send(ctx, case, writer, "reply_undelivered", code=case.code, outcome=outcome)
    return "fired"


# ---------------------------------------------------------------- satisfaction


def times_reopened(ctx: Ctx, case: Case) -> int:
    return len(
        ctx.session.scalars(
            select(CaseEvent.id).where(
                CaseEvent.case_id == case.id,
                CaseEvent.kind == "reopened",
                CaseEvent.actor != "system",
            )
        ).all()
    )


def not_satisfied(ctx: Ctx, case: Case, actor: Actor, *, comment: str) -> None:
    """The resident answered `2`: reopen at the case's level with a shorter claim
    deadline; when it was reopened by the resident before, escalate it too."""
    again = lifecycle.escalates_when_not_satisfied(
        times_reopened=times_reopened(ctx, case), level=case.level
    )
    cases.reopen(ctx, case, actor, reason="resident not satisfied", comment=comment)
    if again:
        cases.escalate(ctx, case, Actor.system(), reason="resident not satisfied a second time")
