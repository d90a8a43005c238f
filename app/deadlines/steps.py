"""Deadline steps: each due step is fired once, in its own transaction."""

from __future__ import annotations

import logging

from app.cases import changes as cases
from app.cases import lookups as case_lookups
from app.context import Actor, Ctx
from app.deadlines import ladder
from app.delivery.send import send
from app.directory import rosters
from app.models.cases import Case
from app.models.deadlines import ScheduledStep
from sms.phones import mask_phone

log = logging.getLogger("gridline.deadlines")


def fire(ctx: Ctx, step: ScheduledStep) -> str:
    """Carry out one due step; returns its outcome (fired or skipped)."""
    case = case_lookups.lock(ctx.session, ctx.session.get(Case, step.case_id))
    assert case is not None
    outcome = "skipped"
    if step.kind == "claim_overdue" and case.status == "open" and case.level == "grid":
        _claim_overdue(ctx, case)
        outcome = "fired"
    elif step.kind == "escalate" and case.status == "open" and case.level in ("grid", "town"):
        cases.escalate(ctx, case, Actor.system(), reason="not claimed in time", to_level="county")
        outcome = "fired"
    elif step.kind == "resolve_overdue" and case.status in ("open", "claimed"):
        if case.level in ("grid", "town"):
            cases.escalate(
                ctx, case, Actor.system(), reason="not resolved in time", to_level="county"
            )
        else:
            cases.record(ctx, case, "overdue", Actor.system(), reason="not resolved in time")
        outcome = "fired"
    elif step.kind == "rating_close" and case.status == "resolved":
        cases.close(ctx, case, Actor.system(), rating=None)
        outcome = "fired"
    elif step.kind in ladder.KINDS:
        outcome = ladder.fire(ctx, case, step)
    step.done_at = ctx.now
    step.outcome = outcome
    return outcome


def _claim_overdue(ctx: Ctx, case: Case) -> None:
    """Nobody claimed in time: the whole grid team and the town office are texted."""
    assert case.grid is not None
    team = [m.phone for m in rosters.members_of(ctx.session, case.grid.id)]
    office: list[str] = []
    if case.town is not None:
        members, _ = rosters.on_duty(ctx.session, case.town, now=ctx.now, tz=ctx.rt.settings.tz)
        office = [m.phone for m in members]
    already = set(case_lookups.participant_phones(ctx.session, case))
    cases.add_participants(ctx, case, team, reason="team")
    cases.add_participants(ctx, case, office, reason="office")
    # Those who were sent the case already are reminded too: one of them may
    # simply have missed it.
    recipients = list(dict.fromkeys([*already, *team, *office]))
    for phone in recipients:
        send(ctx, case, phone, "claim_overdue", code=case.code, text=case.summary)
    cases.record(
        ctx,
        case,
        "claim_overdue",
        Actor.system(),
        reason="not claimed in time: the whole grid team and the town office texted",
        notified=[mask_phone(p) for p in recipients],
        town=case.town.code if case.town else None,
    )
