"""Case state changes. Every change goes through here and writes its timeline
event, its outbox rows and its deadline steps in the caller's transaction.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.cases import categories
from app.cases.lookups import participant_phones
from app.cases.names import display_name, resident_label, team_name
from app.context import Actor, Ctx
from app.delivery import office_webhooks as webhooks_out
from app.delivery.send import send
from app.directory import lookups as directory
from app.directory import rosters
from app.errors import Conflict
from app.models.cases import Case, CaseEvent, CaseParticipant
from app.models.deadlines import ScheduledStep
from app.models.directory import Region
from routing import lifecycle
from routing.policy import (
    Policy,
    after_escalation,
    deadlines_for,
    policy_from_snapshot,
    reminder_at,
)
from sms.phones import mask_phone
from sms.templates import word


def record(ctx: Ctx, case: Case, kind: str, actor: Actor, **detail: Any) -> CaseEvent:
    """Note what happened to the case, and tell the offices' webhooks."""
    event = CaseEvent(
        case_id=case.id,
        at=ctx.now,
        kind=kind,
        actor=actor.name,
        channel=actor.channel,
        detail=detail,
    )
    ctx.session.add(event)
    case.updated_at = ctx.now
    webhooks_out.on_case_event(ctx.session, case, event, locale=ctx.locale)  # offices' hooks
    return event


# ---------------------------------------------------------------- codes


def _code_width(session: Session) -> int:
    live = session.scalar(select(func.count()).where(Case.open_code.is_not(None))) or 0
    # Keep codes short while they are easy to find: widen well before a width fills up.
    for width in (4, 5, 6):
        if live < 9 * 10 ** (width - 1) // 3:
            return width
    return 6


# How long a process goes on with the code width it counted. The width only
# keeps codes short (uniqueness is the constraint's job), and counting the
# live cases on every new case costs a scan of them.
CODE_WIDTH_TTL = timedelta(minutes=1)


def code_width(ctx: Ctx) -> int:
    """The width for new codes: `_code_width`, counted at most once a minute
    (of the case's own time, `ctx.now`)."""
    cached = ctx.rt.caches.get("code_width")
    if isinstance(cached, tuple) and cached[0] <= ctx.now < cached[0] + CODE_WIDTH_TTL:
        return int(cached[1])
    width = _code_width(ctx.session)
    ctx.rt.caches["code_width"] = (ctx.now, width)
    return width


def assign_code(
    session: Session, case: Case, *, rng: random.Random | None = None, width: int | None = None
) -> None:
    """Give `case` a code unique among live cases, of `width` digits (default:
    counted now; `code_width` for a recent count).

    On SQLite the transaction holds the one write lock from its BEGIN, so a
    free candidate cannot be taken before the write. On PostgreSQL the code
    is written in a savepoint, retried with new candidates when the unique
    constraint on `open_code` says another worker took it first.
    """
    rng = rng or random.SystemRandom()
    sqlite = session.get_bind().dialect.name == "sqlite"
    for _ in range(20):
        with session.no_autoflush:
            digits = width or _code_width(session)
            low, high = 10 ** (digits - 1), 10**digits - 1
            candidates = {str(rng.randint(low, high)) for _ in range(8)}
            used = set(
                session.scalars(select(Case.open_code).where(Case.open_code.in_(candidates)))
            )
        free = sorted(candidates - used)
        if not free:
            width = None  # the width may be out of date: count again
            continue
        code = rng.choice(free)
        if sqlite:
            case.code = case.open_code = code
            session.flush()
            return
        try:
            # The savepoint begins with a flush (a new case is inserted before
            # it, without a code); the code is written inside it.
            with session.begin_nested():
                case.code = case.open_code = code
                session.flush()
        except IntegrityError:
            continue
        return
    raise Conflict("could not allocate a case code")


def add_participants(
    ctx: Ctx,
    case: Case,
    phones: list[str],
    *,
    reason: str,
    known: Collection[str] | None = None,
) -> list[str]:
    """Add phones to the case; returns those that were not on it yet. `known`:
    the phones on it when the caller has just read them (none for a case opened
    in this transaction); read here otherwise."""
    existing = set(participant_phones(ctx.session, case) if known is None else known)
    added = []
    for phone in phones:
        if phone in existing:
            continue
        existing.add(phone)
        added.append(phone)
        ctx.session.add(
            CaseParticipant(
                case_id=case.id, phone=phone, reason=reason, level=case.level, added_at=ctx.now
            )
        )
    return added


# ---------------------------------------------------------------- steps


def schedule(ctx: Ctx, case: Case, kind: str, due_at: datetime) -> None:
    ctx.session.add(
        ScheduledStep(case_id=case.id, kind=kind, due_at=due_at, done_at=None, outcome=None)
    )


def cancel_steps(ctx: Ctx, case: Case, *kinds: str) -> None:
    stmt = (
        update(ScheduledStep)
        .where(ScheduledStep.case_id == case.id, ScheduledStep.done_at.is_(None))
        .values(done_at=ctx.now, outcome="cancelled")
    )
    if kinds:
        stmt = stmt.where(ScheduledStep.kind.in_(kinds))
    # "evaluate": steps loaded in this session (the one being fired) see it too.
    ctx.session.execute(stmt, execution_options={"synchronize_session": "evaluate"})
    # Steps scheduled earlier in this transaction and not flushed yet (inside
    # a no_autoflush block): cancel them where they are.
    for pending in ctx.session.new:
        if (
            isinstance(pending, ScheduledStep)
            and pending.case_id == case.id
            and pending.done_at is None
            and (not kinds or pending.kind in kinds)
        ):
            pending.done_at = ctx.now
            pending.outcome = "cancelled"


def policy_of(ctx: Ctx, case: Case) -> Policy:
    """The policy the case started with (its snapshot), else the file's by name."""
    if case.policy_snapshot:
        return policy_from_snapshot(case.policy_snapshot)
    return ctx.rt.policies.policies.get(case.priority) or ctx.rt.policies.policies["normal"]


def start_clock(ctx: Ctx, case: Case, *, reopened: bool = False, new: bool = False) -> None:
    """(Re)start the claim and resolution deadlines from now; a reopened case
    must be claimed sooner (`reopen_claim_within`). A `new` case (opened in
    this transaction) has no steps to cancel."""
    policy = policy_of(ctx, case)
    due = deadlines_for(policy, opened_at=ctx.now, tz=ctx.rt.settings.tz, reopened=reopened)
    case.claim_due_at = due.claim_due_at
    case.escalate_due_at = due.escalate_due_at
    case.resolve_due_at = due.resolve_due_at
    if not new:
        cancel_steps(ctx, case)
    schedule(ctx, case, "claim_overdue", due.claim_due_at)
    schedule(ctx, case, "escalate", due.escalate_due_at)
    schedule(ctx, case, "resolve_overdue", due.resolve_due_at)
    remind_at = reminder_at(policy, resolve_due_at=due.resolve_due_at, now=ctx.now)
    if remind_at is not None:
        schedule(ctx, case, "resolve_reminder", remind_at)


# ---------------------------------------------------------------- transitions


def set_location(case: Case, grid: Region) -> None:
    case.grid = grid
    case.grid_id = grid.id
    town = directory.ancestor_at(grid, "town")
    county = directory.ancestor_at(grid, "county")
    case.town = town
    case.town_id = town.id if town else None
    case.county = county
    case.county_id = county.id if county else None


def forward_to_grid(ctx: Ctx, case: Case, *, text: str, new: bool = False) -> list[str]:
    """Send the case to the grid's on-shift members (all of them if no shift
    covers now); `new`: the case was opened in this transaction."""
    assert case.grid is not None
    members, from_roster = rosters.on_duty(
        ctx.session, case.grid, now=ctx.now, tz=ctx.rt.settings.tz
    )
    # A category's roles (a doctor for health) first, the rest later (app/cases/categories.py).
    phones, later = categories.split_first(ctx, case, [m.phone for m in members])
    add_participants(
        ctx, case, phones, reason="forwarded" if from_roster else "team", known=() if new else None
    )
    who = resident_label(ctx, case)
    for phone in phones:
        send(ctx, case, phone, "forward", code=case.code, who=who, text=text)
    extra: dict[str, Any] = {}
    if later:
        extra = {"category": case.category, "later": [mask_phone(p) for p in later]}
        due = ctx.now + policy_of(ctx, case).claim_within / 2
        categories.schedule_rest(ctx, case, later, due_at=due)
    record(
        ctx,
        case,
        "forwarded",
        Actor.system(),
        grid=case.grid.code,
        to=[mask_phone(p) for p in phones],
        roster="on shift" if from_roster else "no shift covers now: whole team",
        **extra,
    )
    return phones


def route(
    ctx: Ctx,
    case: Case,
    grid: Region,
    *,
    method: str,
    evidence: dict[str, Any],
    text: str,
    new: bool = False,
) -> None:
    """Place an opened case in a grid, start its clock and forward it (`new`:
    opened in this transaction, so it has no steps or participants yet)."""
    set_location(case, grid)
    case.routing_method = method
    case.routing_evidence = {"method": method, **evidence}
    case.status = "open"
    case.level = "grid"
    record(ctx, case, "routed", Actor.system(), grid=grid.code, method=method, **evidence)
    start_clock(ctx, case, new=new)
    forward_to_grid(ctx, case, text=text, new=new)
    send(ctx, case, case.resident_phone, "ack", code=case.code, team=team_name(case, ctx.locale))


def claim(ctx: Ctx, case: Case, actor: Actor, *, quiet: bool = False) -> None:
    if not lifecycle.allows("claim", case.status):
        raise Conflict(f"case #{case.code} is {case.status}")
    assert actor.phone is not None or actor.channel != "sms"
    case.status = "claimed"
    case.claimed_by = actor.phone or actor.name
    case.claimed_at = ctx.now
    cancel_steps(ctx, case, "claim_overdue", "escalate", "resend")
    record(ctx, case, "claimed", actor, level=case.level)
    name = display_name(ctx.session, case.claimed_by, ctx.locale)
    for phone in participant_phones(ctx.session, case):
        if phone != case.claimed_by:
            send(ctx, case, phone, "claimed_notice", code=case.code, name=name)
    if actor.phone and not quiet:
        send(ctx, case, actor.phone, "claimed_ok", code=case.code)
    if not quiet:
        send(
            ctx,
            case,
            case.resident_phone,
            "claimed_resident",
            code=case.code,
            team=team_name(case, ctx.locale),
            name=name,
        )


def relay(ctx: Ctx, case: Case, actor: Actor, *, text: str) -> None:
    """A team member's answer, sent to the resident from the hotline number."""
    if not lifecycle.allows("relay", case.status):
        raise Conflict(f"case #{case.code} is {case.status}")
    if case.status == "open":
        # Answering the resident is taking the case: stop the claim deadline.
        claim(ctx, case, actor, quiet=True)
    record(ctx, case, "relayed", actor, text=text)
    send(
        ctx,
        case,
        case.resident_phone,
        "relay_resident",
        code=case.code,
        team=team_name(case, ctx.locale),
        text=text,
    )


def resolve(ctx: Ctx, case: Case, actor: Actor, *, note: str) -> None:
    if not lifecycle.allows("resolve", case.status):
        raise Conflict(f"case #{case.code} is {case.status}")
    if case.status == "open":
        case.claimed_by = actor.phone or actor.name
        case.claimed_at = ctx.now
    case.status = "resolved"
    case.resolved_at = ctx.now
    cancel_steps(ctx, case)
    schedule(ctx, case, "rating_close", ctx.now + ctx.rt.rating_window)
    record(ctx, case, "resolved", actor, note=note)
    shown = note or "—"
    send(ctx, case, case.resident_phone, "resolved_resident", code=case.code, note=shown)
    if actor.phone:
        send(ctx, case, actor.phone, "resolved_ok", code=case.code)


def office_for(case: Case, level: str) -> Region | None:
    if level == "town":
        return case.town
    if level == "county":
        return case.county
    return None


def escalate(
    ctx: Ctx, case: Case, actor: Actor, *, reason: str, to_level: str | None = None
) -> None:
    """Move the case up the ladder; the office there is texted and must claim it."""
    if not lifecycle.allows("escalate", case.status):
        raise Conflict(f"case #{case.code} is {case.status}")
    target = lifecycle.escalation_target(case.level, to_level)
    if target is None:
        raise Conflict(f"case #{case.code} is already at the top level")
    previous = case.level
    case.level = target
    case.status = "open"
    case.claimed_by = None
    case.claimed_at = None
    cancel_steps(ctx, case, "claim_overdue", "escalate", "resend")
    office = office_for(case, target)
    phones: list[str] = []
    if office is not None:
        members, _ = rosters.on_duty(ctx.session, office, now=ctx.now, tz=ctx.rt.settings.tz)
        phones = [m.phone for m in members]
    add_participants(ctx, case, phones, reason="office")
    record(
        ctx,
        case,
        "escalated",
        actor,
        **{
            "from": previous,
            "to": target,
            "reason": reason,
            "office": office.code if office else None,
            "notified": [mask_phone(p) for p in phones],
        },
    )
    level_word = word(f"level.{target}", ctx.locale)
    for phone in phones:
        send(
            ctx,
            case,
            phone,
            "escalated_notice",
            code=case.code,
            level=level_word,
            reason=reason,
            text=case.summary,
        )
    # The resident knows who has it now, in one line (not why: reasons are internal).
    where = office.name if office is not None else level_word
    send(ctx, case, case.resident_phone, "escalated_resident", code=case.code, level=where)
    # The town gets the rest of the claim window; the top of the ladder is re-sent.
    schedule(ctx, case, *after_escalation(policy_of(ctx, case), to_level=target, now=ctx.now))
    if actor.phone:
        send(ctx, case, actor.phone, "escalated_ok", code=case.code, level=level_word)


def transfer(ctx: Ctx, case: Case, actor: Actor, *, grid: Region) -> None:
    if not lifecycle.allows("transfer", case.status):
        raise Conflict(f"case #{case.code} is {case.status}")
    previous = case.grid.code if case.grid else None
    set_location(case, grid)
    case.level = "grid"
    case.status = "open"
    case.claimed_by = None
    case.claimed_at = None
    record(ctx, case, "transferred", actor, **{"from": previous, "to": grid.code})
    start_clock(ctx, case)
    forward_to_grid(ctx, case, text=case.summary)
    if actor.phone:
        send(ctx, case, actor.phone, "transferred_ok", code=case.code, grid=grid.name)
    team = team_name(case, ctx.locale)
    send(ctx, case, case.resident_phone, "transferred_resident", code=case.code, team=team)


def close(ctx: Ctx, case: Case, actor: Actor, *, rating: int | None) -> None:
    if not lifecycle.allows("close", case.status):
        raise Conflict(f"case #{case.code} is {case.status}")
    case.status = "closed"
    case.closed_at = ctx.now
    case.rating = rating
    case.open_code = None
    cancel_steps(ctx, case)
    record(ctx, case, "closed", actor, rating=rating)


def reopen(ctx: Ctx, case: Case, actor: Actor, *, reason: str, comment: str = "") -> None:
    """'Not satisfied': the case opens again at its level, and its team is told."""
    if not lifecycle.allows("reopen", case.status):
        raise Conflict(f"case #{case.code} is {case.status}")
    previous_owner = case.claimed_by
    case.status = "open"
    case.claimed_by = None
    case.claimed_at = None
    case.resolved_at = None
    case.rating = 2
    record(ctx, case, "reopened", actor, reason=reason, comment=comment)
    start_clock(ctx, case, reopened=True)
    phones = participant_phones(ctx.session, case, level=case.level)
    if previous_owner and previous_owner not in phones and not previous_owner.startswith("api:"):
        phones.insert(0, previous_owner)
    for phone in phones:
        send(ctx, case, phone, "reopened_team", code=case.code, text=comment or case.summary)
    send(ctx, case, case.resident_phone, "reopened_resident", code=case.code)


def current_handlers(ctx: Ctx, case: Case) -> list[str]:
    """Who hears the resident's follow-up: the claimant, or everyone at the current level."""
    if case.status == "claimed" and case.claimed_by and not case.claimed_by.startswith("api:"):
        return [case.claimed_by]
    return participant_phones(ctx.session, case, level=case.level)


# ---------------------------------------------------------------- office actions


def assign(ctx: Ctx, case: Case, actor: Actor, *, phone: str) -> None:
    """Hand the case to a phone (a member or any contact, e.g. a bureau's duty
    phone): it is texted the case, becomes a participant (so it can answer with
    the SMS grammar) and holds the claim."""
    if not lifecycle.allows("assign", case.status):
        raise Conflict(f"case #{case.code} is {case.status}")
    add_participants(ctx, case, [phone], reason="assigned")
    previous = case.claimed_by
    case.status = "claimed"
    case.claimed_by = phone
    case.claimed_at = ctx.now
    cancel_steps(ctx, case, "claim_overdue", "escalate", "resend")
    record(
        ctx,
        case,
        "assigned",
        actor,
        to=mask_phone(phone),
        name=directory.member_name(ctx.session, phone),
        level=case.level,
        previous=display_name(ctx.session, previous, ctx.locale) if previous else None,
    )
    send(ctx, case, phone, "assigned_notice", code=case.code, text=case.summary)


def comment(ctx: Ctx, case: Case, actor: Actor, *, body: str) -> None:
    """An internal note on the timeline; nobody is texted. Allowed in every status."""
    record(ctx, case, "comment", actor, body=body)


def message_resident(ctx: Ctx, case: Case, actor: Actor, *, body: str, sender: str) -> None:
    """An SMS to the resident from the hotline, signed with `sender` (the office's name)."""
    if not lifecycle.allows("message", case.status):
        raise Conflict(f"case #{case.code} is {case.status}")
    record(ctx, case, "messaged", actor, text=body)
    send(ctx, case, case.resident_phone, "relay_resident", code=case.code, team=sender, text=body)
