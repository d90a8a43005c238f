"""Case state changes. Every change goes through here and writes its timeline
event, its outbox rows and its deadline steps in the caller's transaction.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import memo
from app.cases import categories
from app.cases.lookups import memo_participants, participant_phones, participantless_cases
from app.delivery import office_webhooks as webhooks_out
from app.delivery import quiet
from app.delivery.outbox import enqueue, priority_for
from app.directory import lookups as directory
from app.errors import Conflict
from app.inbound import guards
from app.models.cases import Case, CaseEvent, CaseParticipant
from app.models.deadlines import ScheduledStep
from app.models.directory import Member, Region
from app.runtime import Runtime
from routing.policy import Policy, deadlines_for, policy_from_snapshot
from sms.phones import mask_phone
from sms.templates import word

LEVELS = ("grid", "town", "county", "city")


@dataclass(frozen=True)
class Actor:
    """Who did it, and through which channel (sms, api, system)."""

    name: str
    channel: str
    phone: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(name="system", channel="system")

    @classmethod
    def sms(cls, phone: str) -> Actor:
        return cls(name=mask_phone(phone), channel="sms", phone=phone)


@dataclass
class Ctx:
    """One unit of work: the session, the runtime and the moment it happens."""

    session: Session
    rt: Runtime
    now: datetime
    inbound_id: int | None = None

    @property
    def locale(self) -> str:
        return self.rt.settings.locale

    def send(self, case: Case | None, to: str, template: str, **params: Any) -> None:
        if guards.suppress(self, to, template):  # loop guards (auto-responders)
            return
        priority = priority_for(template, case_priority=case.priority if case else None)
        enqueue(
            self.session,
            to=to,
            template=template,
            params=params,
            locale=self.locale,
            now=self.now,
            case_id=case.id if case is not None else None,
            inbound_id=self.inbound_id,
            priority=priority,
            not_before=quiet.hold_until(self, case, to, template),
        )


def record(ctx: Ctx, case: Case, kind: str, actor: Actor, **detail: Any) -> CaseEvent:
    """Note what happened to the case, and tell the offices' webhooks.

    A batch (the memo on) writes its events at its end, in one statement; the
    event returned is then not in the session. Nothing in a batch reads events
    back but `ladder.times_reopened`, which counts the queued ones too.
    """
    row = {
        "case_id": case.id,
        "at": ctx.now,
        "kind": kind,
        "actor": actor.name,
        "channel": actor.channel,
        "detail": detail,
    }
    event = CaseEvent(**row)
    if not memo.defer_insert(ctx.session, CaseEvent, row):
        ctx.session.add(event)
    case.updated_at = ctx.now
    webhooks_out.on_case_event(ctx.session, case, event, locale=ctx.locale)  # offices' hooks
    return event


# ---------------------------------------------------------------- codes


_LIVE_CODES = "live_codes"  # memo key: live cases' codes in use (a batch counts once)


def _code_width(session: Session) -> int:
    live = memo.cached(
        session,
        _LIVE_CODES,
        lambda: session.scalar(select(func.count()).where(Case.open_code.is_not(None))) or 0,
    )
    # Keep codes short while they are easy to find: widen well before a width fills up.
    for width in (4, 5, 6):
        if live < 9 * 10 ** (width - 1) // 3:
            return width
    return 6


def assign_code(session: Session, case: Case, *, rng: random.Random | None = None) -> None:
    """Give `case` a code unique among live cases.

    Candidates are checked first; a new case's INSERT then carries its code
    (no savepoint, no UPDATE) where nobody can take the code between the check
    and the write, or where a collision costs little:
    - SQLite: the transaction holds the one write lock from its BEGIN.
    - A batch of messages on PostgreSQL (the memo on): a concurrent worker
      could take the same code first, one of eight random free candidates,
      hardly ever; the unique constraint on `open_code` then fails the batch,
      which is rolled back and processed one message at a time (app/worker/loop.py),
      each with the savepoint below.
    Otherwise (PostgreSQL) the case is flushed first and its code written in a
    savepoint, retried with new candidates on a collision.
    """
    rng = rng or random.SystemRandom()
    new = inspect(case).pending
    had_code = case.open_code is not None
    sqlite = session.get_bind().dialect.name == "sqlite"
    one_write = sqlite or (new and memo.table_of(session) is not None)
    for _ in range(20):
        with session.no_autoflush if one_write else contextlib.nullcontext():
            width = _code_width(session)
            low, high = 10 ** (width - 1), 10**width - 1
            candidates = {str(rng.randint(low, high)) for _ in range(8)}
            used = set(
                session.scalars(select(Case.open_code).where(Case.open_code.in_(candidates)))
            )
        free = sorted(candidates - used)
        if not free:
            continue
        code = rng.choice(free)
        if one_write:
            case.code = case.open_code = code
            session.flush()
            _coded(session, case, new=new, had_code=had_code)
            return
        try:
            with session.begin_nested():
                case.code = code
                case.open_code = code
                session.flush()
        except IntegrityError:
            continue
        _coded(session, case, new=new, had_code=had_code)
        return
    raise Conflict("could not allocate a case code")


def _coded(session: Session, case: Case, *, new: bool, had_code: bool) -> None:
    """Keep the batch's notes in step with a case that has just got its code."""
    if new:
        stepless_cases(session).add(case.id)
        participantless_cases(session).add(case.id)
    held = memo.table_of(session)
    if held is None:
        return
    if new:
        held.get("no_live_case", set()).discard(case.resident_phone)
    if _LIVE_CODES in held and not had_code:
        held[_LIVE_CODES] += 1


def add_participants(ctx: Ctx, case: Case, phones: list[str], *, reason: str) -> list[str]:
    """Add phones to the case; returns those that were not on it yet."""
    existing = set(participant_phones(ctx.session, case))
    added = []
    for phone in phones:
        if phone in existing:
            continue
        existing.add(phone)
        added.append(phone)
    known = memo_participants(ctx.session, case)
    if added:
        participantless_cases(ctx.session).discard(case.id)
        held = memo.table_of(ctx.session)
        if held is not None:
            held.get("not_participants", set()).difference_update(added)
    for phone in added:
        row = {
            "case_id": case.id,
            "phone": phone,
            "reason": reason,
            "level": case.level,
            "added_at": ctx.now,
        }
        if known is None:
            ctx.session.add(CaseParticipant(**row))
        else:  # a batch of steps: written at its end, known to the memo until then
            memo.defer_insert(ctx.session, CaseParticipant, row)
            known.append((phone, case.level))
    if known is None:
        ctx.session.flush()
    return added


def display_name(session: Session, phone: str, locale: str) -> str:
    if phone.startswith("api:"):  # an office acting through the API: its name
        from app.directory.offices import display_name as office_name

        return office_name(session, phone, locale) or word("office", locale)
    return directory.member_name(session, phone) or mask_phone(phone)


def team_name(case: Case, locale: str) -> str:
    if case.grid is None:
        return word("office", locale)
    return word("team", locale, grid=case.grid.name)


def resident_label(ctx: Ctx, case: Case) -> str:
    from app.models.directory import Resident

    resident = ctx.session.get(Resident, case.resident_id) if case.resident_id else None
    phone = mask_phone(case.resident_phone)
    if resident is not None and resident.name:
        return word("resident_named", ctx.locale, name=resident.name, phone=phone)
    return word("resident", ctx.locale, phone=phone)


# ---------------------------------------------------------------- steps


def stepless_cases(session: Session) -> set[int]:
    """Ids of cases created in this transaction that have no step yet (kept only
    when memoising, so a batch of messages skips `cancel_steps` on a new case)."""
    held = memo.table_of(session)
    if held is None:
        return set()
    found: set[int] = held.setdefault("stepless", set())
    return found


def schedule(ctx: Ctx, case: Case, kind: str, due_at: datetime) -> None:
    stepless_cases(ctx.session).discard(case.id)
    row = {"case_id": case.id, "kind": kind, "due_at": due_at, "done_at": None, "outcome": None}
    # A batch (the memo on) writes its steps at its end, in one statement:
    # nothing in the batch reads a step back but `cancel_steps`, which sees these.
    if not memo.defer_insert(ctx.session, ScheduledStep, row):
        ctx.session.add(ScheduledStep(**row))


def cancel_steps(ctx: Ctx, case: Case, *kinds: str) -> None:
    if case.id in stepless_cases(ctx.session):
        return  # created in this transaction, and nothing scheduled for it yet
    stmt = (
        update(ScheduledStep)
        .where(ScheduledStep.case_id == case.id, ScheduledStep.done_at.is_(None))
        .values(done_at=ctx.now, outcome="cancelled")
    )
    if kinds:
        stmt = stmt.where(ScheduledStep.kind.in_(kinds))
    # "evaluate": steps loaded in this session (a batch being fired) see it too.
    ctx.session.execute(stmt, execution_options={"synchronize_session": "evaluate"})
    # Steps scheduled earlier in the same batch are not written yet (queued for
    # the batch's end, or pending without autoflush): cancel them where they are.
    for pending in ctx.session.new:
        if (
            isinstance(pending, ScheduledStep)
            and pending.case_id == case.id
            and pending.done_at is None
            and (not kinds or pending.kind in kinds)
        ):
            pending.done_at = ctx.now
            pending.outcome = "cancelled"
    for row in memo.deferred(ctx.session, ScheduledStep):
        if (
            row["case_id"] == case.id
            and row["done_at"] is None
            and (not kinds or row["kind"] in kinds)
        ):
            row["done_at"] = ctx.now
            row["outcome"] = "cancelled"


def policy_of(ctx: Ctx, case: Case) -> Policy:
    """The policy the case started with (its snapshot), else the file's by name."""
    if case.policy_snapshot:
        return policy_from_snapshot(case.policy_snapshot)
    return ctx.rt.policies.policies.get(case.priority) or ctx.rt.policies.policies["normal"]


def start_clock(ctx: Ctx, case: Case, *, reopened: bool = False) -> None:
    """(Re)start the claim and resolution deadlines from now; a reopened case
    must be claimed sooner (`reopen_claim_within`)."""
    policy = policy_of(ctx, case)
    due = deadlines_for(policy, opened_at=ctx.now, tz=ctx.rt.settings.tz)
    if reopened:
        shorter = policy.reopen_claim - policy.claim_within
        due = replace(
            due,
            claim_due_at=due.claim_due_at + shorter,
            escalate_due_at=due.escalate_due_at + shorter,
        )
    case.claim_due_at = due.claim_due_at
    case.escalate_due_at = due.escalate_due_at
    case.resolve_due_at = due.resolve_due_at
    cancel_steps(ctx, case)
    schedule(ctx, case, "claim_overdue", due.claim_due_at)
    schedule(ctx, case, "escalate", due.escalate_due_at)
    schedule(ctx, case, "resolve_overdue", due.resolve_due_at)
    if policy.remind_before is not None and due.resolve_due_at - policy.remind_before > ctx.now:
        schedule(ctx, case, "resolve_reminder", due.resolve_due_at - policy.remind_before)


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


def forward_to_grid(ctx: Ctx, case: Case, *, text: str) -> list[str]:
    """Send the case to the grid's on-shift members (all of them if no shift covers now)."""
    assert case.grid is not None
    members, from_roster = directory.on_duty(
        ctx.session, case.grid, now=ctx.now, tz=ctx.rt.settings.tz
    )
    # A category's roles (a doctor for health) first, the rest later (app/cases/categories.py).
    phones, later = categories.split_first(ctx, case, [m.phone for m in members])
    add_participants(ctx, case, phones, reason="forwarded" if from_roster else "team")
    who = resident_label(ctx, case)
    for phone in phones:
        ctx.send(case, phone, "forward", code=case.code, who=who, text=text)
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
    ctx: Ctx, case: Case, grid: Region, *, method: str, evidence: dict[str, Any], text: str
) -> None:
    """Place an opened case in a grid, start its clock and forward it."""
    set_location(case, grid)
    case.routing_method = method
    case.routing_evidence = {"method": method, **evidence}
    case.status = "open"
    case.level = "grid"
    record(ctx, case, "routed", Actor.system(), grid=grid.code, method=method, **evidence)
    start_clock(ctx, case)
    forward_to_grid(ctx, case, text=text)
    ctx.send(case, case.resident_phone, "ack", code=case.code, team=team_name(case, ctx.locale))


def claim(ctx: Ctx, case: Case, actor: Actor, *, quiet: bool = False) -> None:
    if case.status != "open":
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
            ctx.send(case, phone, "claimed_notice", code=case.code, name=name)
    if actor.phone and not quiet:
        ctx.send(case, actor.phone, "claimed_ok", code=case.code)
    if not quiet:
        ctx.send(
            case,
            case.resident_phone,
            "claimed_resident",
            code=case.code,
            team=team_name(case, ctx.locale),
            name=name,
        )


def relay(ctx: Ctx, case: Case, actor: Actor, *, text: str) -> None:
    """A team member's answer, sent to the resident from the hotline number."""
    if case.status not in ("open", "claimed", "resolved"):
        raise Conflict(f"case #{case.code} is {case.status}")
    if case.status == "open":
        # Answering the resident is taking the case: stop the claim deadline.
        claim(ctx, case, actor, quiet=True)
    record(ctx, case, "relayed", actor, text=text)
    ctx.send(
        case,
        case.resident_phone,
        "relay_resident",
        code=case.code,
        team=team_name(case, ctx.locale),
        text=text,
    )


def resolve(ctx: Ctx, case: Case, actor: Actor, *, note: str) -> None:
    if case.status not in ("open", "claimed"):
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
    ctx.send(case, case.resident_phone, "resolved_resident", code=case.code, note=shown)
    if actor.phone:
        ctx.send(case, actor.phone, "resolved_ok", code=case.code)


def next_level(level: str) -> str | None:
    index = LEVELS.index(level)
    return LEVELS[index + 1] if index + 1 < len(LEVELS) else None


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
    if case.status not in ("open", "claimed"):
        raise Conflict(f"case #{case.code} is {case.status}")
    target = to_level or next_level(case.level)
    if target is None or LEVELS.index(target) <= LEVELS.index(case.level):
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
        members, _ = directory.on_duty(ctx.session, office, now=ctx.now, tz=ctx.rt.settings.tz)
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
        ctx.send(
            case,
            phone,
            "escalated_notice",
            code=case.code,
            level=level_word,
            reason=reason,
            text=case.summary,
        )
    policy = policy_of(ctx, case)
    if target == "town":
        # The town gets the rest of the claim window before the county is told.
        schedule(ctx, case, "escalate", ctx.now + (policy.escalate_after - policy.claim_within))
    else:
        # The top of the ladder is never silent: re-sent until claimed (app/deadlines/ladder.py).
        schedule(ctx, case, "resend", ctx.now + policy.resend_every)
    if actor.phone:
        ctx.send(case, actor.phone, "escalated_ok", code=case.code, level=level_word)


def transfer(ctx: Ctx, case: Case, actor: Actor, *, grid: Region) -> None:
    if case.status not in ("open", "claimed"):
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
        ctx.send(case, actor.phone, "transferred_ok", code=case.code, grid=grid.name)


def close(ctx: Ctx, case: Case, actor: Actor, *, rating: int | None) -> None:
    if case.status != "resolved":
        raise Conflict(f"case #{case.code} is {case.status}")
    case.status = "closed"
    case.closed_at = ctx.now
    case.rating = rating
    case.open_code = None
    cancel_steps(ctx, case)
    record(ctx, case, "closed", actor, rating=rating)


def reopen(ctx: Ctx, case: Case, actor: Actor, *, reason: str, comment: str = "") -> None:
    """'Not satisfied': the case opens again at its level, and its team is told."""
    if case.status != "resolved":
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
        ctx.send(case, phone, "reopened_team", code=case.code, text=comment or case.summary)
    ctx.send(case, case.resident_phone, "reopened_resident", code=case.code)


def current_handlers(ctx: Ctx, case: Case) -> list[str]:
    """Who hears the resident's follow-up: the claimant, or everyone at the current level."""
    if case.status == "claimed" and case.claimed_by and not case.claimed_by.startswith("api:"):
        return [case.claimed_by]
    return participant_phones(ctx.session, case, level=case.level)


def member_units(session: Session, phone: str) -> list[Member]:
    return directory.members_by_phone(session, phone)


# ---------------------------------------------------------------- office actions


def assign(ctx: Ctx, case: Case, actor: Actor, *, phone: str) -> None:
    """Hand the case to a phone (a member or any contact, e.g. a bureau's duty
    phone): it is texted the case, becomes a participant (so it can answer with
    the SMS grammar) and holds the claim."""
    if case.status not in ("open", "claimed"):
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
    ctx.send(case, phone, "assigned_notice", code=case.code, text=case.summary)


def comment(ctx: Ctx, case: Case, actor: Actor, *, body: str) -> None:
    """An internal note on the timeline; nobody is texted. Allowed in every status."""
    record(ctx, case, "comment", actor, body=body)


def message_resident(ctx: Ctx, case: Case, actor: Actor, *, body: str, sender: str) -> None:
    """An SMS to the resident from the hotline, signed with `sender` (the office's name)."""
    if case.status not in ("awaiting_address", "open", "claimed", "resolved"):
        raise Conflict(f"case #{case.code} is {case.status}")
    record(ctx, case, "messaged", actor, text=body)
    ctx.send(case, case.resident_phone, "relay_resident", code=case.code, team=sender, text=body)
