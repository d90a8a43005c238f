"""Deadline steps: what each due step does, fired once (app/deadlines/scheduler.py)."""

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
from routing import lifecycle
from sms.phones import mask_phone

log = logging.getLogger("gridline.deadlines")


def fire(ctx: Ctx, step: ScheduledStep, case: Case) -> str:
    """Carry out one due step of `case` (locked by the caller) as
    `routing.lifecycle.step_action` says; returns its outcome (fired or skipped)."""
    if step.kind not in lifecycle.STEP_KINDS:
        log.warning("step %s of an unknown kind %r skipped", step.id, step.kind)
        action = None
    else:
        action = lifecycle.step_action(step.kind, case.status, case.level)
    outcome = "fired"
    if action is None:
        outcome = "skipped"
    elif action == "notify_team_and_town":
        _claim_overdue(ctx, case)
    elif action == "escalate_to_county":
        why = "not claimed in time" if step.kind == "escalate" else "not resolved in time"
        cases.escalate(ctx, case, Actor.system(), reason=why, to_level="county")
    elif action == "mark_overdue":
        cases.record(ctx, case, "overdue", Actor.system(), reason="not resolved in time")
    elif action == "close":
        cases.close(ctx, case, Actor.system(), rating=None)
    else:
        outcome = ladder.fire(ctx, case, step, action)
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
    cases.add_participants(ctx, case, team, reason="team", known=already)
    cases.add_participants(ctx, case, office, reason="office", known=already | set(team))
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
