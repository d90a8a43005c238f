"""A resident's text: opt-out and help, a rating, an answer to "where?", a
follow-up to their open case, or a new case, placed by `placement`."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.cases import changes as cases
from app.cases import lookups as case_lookups
from app.cases import names
from app.context import Actor, Ctx
from app.deadlines import ladder
from app.delivery.send import send
from app.inbound.placement import location_of, place, place_answer, resident_of
from app.models.cases import Case
from app.models.directory import Region, Resident
from routing.grammar import ResidentIntent, parse_resident
from routing.policy import policy_snapshot
from sms.templates import word


def _resident(session: Session, phone: str) -> Resident | None:
    return resident_of(session, phone)


def _new_resident(session: Session, phone: str) -> Resident:
    resident = Resident(phone=phone, tags="")
    session.add(resident)
    return resident


def handle_resident(ctx: Ctx, phone: str, body: str) -> Case | None:
    parsed = parse_resident(body)
    session = ctx.session
    if parsed.intent in (ResidentIntent.STOP, ResidentIntent.START):
        resident = _resident(session, phone)
        if resident is None:
            resident = _new_resident(session, phone)
        resident.opted_out = parsed.intent is ResidentIntent.STOP
        send(ctx, None, phone, "opted_out" if resident.opted_out else "opted_in")
        return None
    if parsed.intent is ResidentIntent.HELP:
        send(ctx, None, phone, "help_resident")
        return None
    if parsed.intent is ResidentIntent.STATUS:
        return _answer_status(ctx, phone)
    if parsed.intent in (ResidentIntent.SATISFIED, ResidentIntent.NOT_SATISFIED):
        resolved = case_lookups.lock(
            session, case_lookups.resolved_case_of_resident(session, phone)
        )
        if resolved is not None and resolved.status == "resolved":
            actor = Actor.sms(phone)
            if parsed.intent is ResidentIntent.SATISFIED:
                cases.close(ctx, resolved, actor, rating=1)
                send(ctx, resolved, phone, "rated_thanks", code=resolved.code)
            else:
                # "不满意，还没修好": the words after the rating tell the team why.
                comment = parsed.text if parsed.text.strip() not in ("2", "２") else ""
                ladder.not_satisfied(ctx, resolved, actor, comment=comment)
            return resolved
    # Keep the resident's own words (full-width punctuation and all) for people.
    text = body.strip() or parsed.text
    active = case_lookups.lock(session, case_lookups.active_case_of_resident(session, phone))
    awaiting = active is not None and active.status == "awaiting_address"
    if not text.strip() and not (awaiting and location_of(session, ctx.inbound_id)):
        # An empty text (a blank send, a picture without words) says nothing to
        # act on: no case and nothing relayed; the sender is told how to ask.
        send(ctx, active, phone, "help_resident")
        return active
    if active is not None and awaiting:
        return _try_address(ctx, active, text)
    if active is not None:
        return _append(ctx, active, text)
    return open_case(ctx, phone, text)


def _answer_status(ctx: Ctx, phone: str) -> Case | None:
    """`进度` / `查询` / `status`: the resident's live cases, each with its state,
    who has it and since when (the newest first, as many as fit)."""
    live = case_lookups.live_cases_of_resident(ctx.session, phone)
    if not live:
        send(ctx, None, phone, "status_none")
        return None
    tz = ctx.rt.settings.tz
    items = word("sep", ctx.locale).join(
        word(
            "case_state",
            ctx.locale,
            code=c.code,
            status=word(f"status.{c.status}", ctx.locale),
            team=names.holder_name(c, ctx.locale),
            since=c.created_at.astimezone(tz).strftime("%m-%d %H:%M"),
        )
        for c in live[:4]
    )
    send(ctx, live[0], phone, "status_resident", items=items)
    return live[0]


def open_case(ctx: Ctx, phone: str, text: str) -> Case:
    session = ctx.session
    resident = _resident(session, phone)
    policies = ctx.rt.policies
    category = policies.categorize(text)
    tags = resident.tags.split(";") if resident is not None and resident.tags else []
    policy = policies.choose(text, tags=tags, category=category)
    case = Case(
        code="",
        status="awaiting_address",
        level="grid",
        priority=policy.name,
        policy_snapshot=policy_snapshot(policy),
        category=category,
        resident_phone=phone,
        resident_id=resident.id if resident else None,
        summary=text,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    session.add(case)
    cases.assign_code(session, case, width=cases.code_width(ctx))
    actor = Actor.sms(phone)
    cases.record(ctx, case, "received", actor, text=text, priority=policy.name)
    location = location_of(session, ctx.inbound_id)
    placement = place(session, ctx.rt, phone=phone, text=text, location=location, resident=resident)
    if placement.grid is not None:
        cases.route(
            ctx,
            case,
            placement.grid,
            method=placement.method,
            evidence=placement.evidence,
            text=text,
            new=True,
        )
    else:
        case.routing_method = "asked"
        case.routing_evidence = {"method": "asked", **placement.evidence}
        case.address_attempts = 1
        cases.record(ctx, case, "address_requested", Actor.system(), reason=placement.summary)
        template, params = placement.question(ctx.locale)
        send(ctx, case, phone, template, **params)
    return case


def _try_address(ctx: Ctx, case: Case, text: str) -> Case:
    """The resident's answer to "where do you live?": route when it places them."""
    session = ctx.session
    cases.record(ctx, case, "message", Actor.sms(case.resident_phone), text=text)
    placement = place_answer(
        session,
        ctx.rt,
        phone=case.resident_phone,
        answer=text,
        asked=case.routing_evidence,
        summary=case.summary,
        location=location_of(session, ctx.inbound_id),
    )
    if placement.grid is not None and placement.method in ("address", "location"):
        if placement.method == "address":
            remember = str(placement.evidence.get("remember") or text)
            _remember_address(ctx, case.resident_phone, remember, placement.grid)
            case.resident_id = _resident(session, case.resident_phone).id  # type: ignore[union-attr]
        cases.route(
            ctx,
            case,
            placement.grid,
            method="asked",
            evidence={**placement.evidence, "answer": text},
            text=case.summary,
        )
        return case
    case.address_attempts += 1
    cases.record(
        ctx,
        case,
        "address_requested",
        Actor.system(),
        reason=placement.summary,
        attempt=case.address_attempts,
    )
    if placement.method == "ask":  # the answer is a place of several grids: ask which
        case.routing_evidence = {"method": "asked", **placement.evidence}
        template, params = placement.question(ctx.locale)
        send(ctx, case, case.resident_phone, template, **params)
    else:
        send(ctx, case, case.resident_phone, "ask_address_again")
    return case


def _remember_address(ctx: Ctx, phone: str, address: str, grid: Region) -> None:
    resident = _resident(ctx.session, phone)
    if resident is None:
        resident = _new_resident(ctx.session, phone)
    resident.address = address
    resident.grid = grid
    resident.grid_id = grid.id
    resident.address_source = "sms"
    resident.address_confirmed_at = ctx.now
    ctx.session.flush()


def _append(ctx: Ctx, case: Case, text: str) -> Case:
    cases.record(ctx, case, "message", Actor.sms(case.resident_phone), text=text)
    for phone in cases.current_handlers(ctx, case):
        send(ctx, case, phone, "forward_append", code=case.code, text=text)
    send(ctx, case, case.resident_phone, "ack_append", code=case.code)
    return case
