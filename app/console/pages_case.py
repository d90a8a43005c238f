"""The case page (/console/cases/{id}): routing evidence, the timeline with the
delivery of every SMS, the resident (masked), and the office's actions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.api.limits import charge_sms
from app.cases import changes as case_service
from app.cases import lookups as case_lookups
from app.cases import office_actions as case_actions
from app.cases.names import display_name
from app.console.audit import write_audit
from app.console.auth import CsrfDep, FormDep, StaffContext, StaffDep
from app.console.labels import area, assignee, countdown, event_labels, level_labels, status_labels
from app.console.queue import grids
from app.console.render import render, translator
from app.console.router import router
from app.context import Ctx
from app.deps import RuntimeDep, SessionDep
from app.directory.offices import case_filter, region_filter, visible_case
from app.directory.offices import display_name as office_display_name
from app.errors import DomainError, NotFound, Unprocessable
from app.models.cases import Case
from app.models.directory import Region, Resident
from app.models.messages import DeliveryAttempt, DeliveryReport, OutboundMessage
from app.runtime import Runtime
from sms.phones import InvalidPhone, mask_phone, mask_phones_in_text, normalize_phone

MAX_TEXT = 2000
MIN_PURPOSE = 4


def actor_label(session: Session, actor: str, lang: str) -> str:
    """A timeline actor for people: an office (and its staff member), a name, or as stored."""
    if actor.startswith("api:"):
        name = office_display_name(session, actor, lang) or actor
        user = actor.split(":")[-1]
        return f"{name} · {user[1:]}" if user.startswith("@") else name
    if actor.startswith("+"):
        return display_name(session, actor, lang)
    return mask_phones_in_text(actor)


def _plain(value: object) -> str:
    """A JSON value for people: lists joined, objects as `key value` pairs."""
    if isinstance(value, list):
        return "; ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items())
    return str(value)


def _detail(detail: dict[str, Any]) -> list[tuple[str, str]]:
    """A timeline event's details as masked (key, text) pairs."""
    pairs: list[tuple[str, str]] = []
    for key, value in (detail or {}).items():
        if value in (None, "", [], {}):
            continue
        text = _plain(value)
        pairs.append((key, mask_phones_in_text(text)))
    return pairs


def timeline(session: Session, case: Case, lang: str) -> list[dict[str, Any]]:
    """The case's events and SMS, in time order (events before SMS of the same moment)."""
    labels = event_labels(lang)
    entries: list[tuple[datetime, int, int, dict[str, Any]]] = []
    session.expire(case, ["events"])
    for event in case.events:
        entries.append(
            (
                event.at,
                0,
                event.id,
                {
                    "type": "event",
                    "at": event.at,
                    "kind": event.kind,
                    "label": labels.get(event.kind, event.kind),
                    "actor": actor_label(session, event.actor, lang),
                    "channel": event.channel,
                    "detail": _detail(event.detail),
                },
            )
        )
    messages = list(
        session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.case_id == case.id)
            .order_by(OutboundMessage.id)
        )
    )
    ids = [m.id for m in messages]
    attempts: dict[int, list[DeliveryAttempt]] = {i: [] for i in ids}
    reports: dict[int, list[DeliveryReport]] = {i: [] for i in ids}
    if ids:
        for attempt in session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.outbound_id.in_(ids))
            .order_by(DeliveryAttempt.id)
        ):
            attempts[attempt.outbound_id].append(attempt)
        for report in session.scalars(
            select(DeliveryReport)
            .where(DeliveryReport.outbound_id.in_(ids))
            .order_by(DeliveryReport.id)
        ):
            if report.outbound_id is not None:
                reports[report.outbound_id].append(report)
    resident = case.resident_phone
    for message in messages:
        entries.append(
            (
                message.created_at,
                1,
                message.id,
                {
                    "type": "sms",
                    "at": message.created_at,
                    "to": mask_phone(message.to_phone),
                    "to_resident": message.to_phone == resident,
                    "template": message.template,
                    "body": mask_phones_in_text(message.body),
                    "status": message.status,
                    "delivery_status": message.delivery_status,
                    "error": " ".join(p for p in (message.error_code, message.error_message) if p),
                    "sent_at": message.sent_at,
                    "attempts": [
                        {
                            "at": a.at,
                            "outcome": a.outcome,
                            "error": " ".join(p for p in (a.error_code, a.error_message) if p),
                        }
                        for a in attempts[message.id]
                    ],
                    "reports": [
                        {"at": r.received_at, "status": r.status, "error": r.error_code or ""}
                        for r in reports[message.id]
                    ],
                },
            )
        )
    entries.sort(key=lambda e: (e[0], e[1], e[2]))
    return [e[3] for e in entries]


def other_cases(session: Session, ctx: StaffContext, case: Case) -> list[Case]:
    """The resident's other cases that the office may see."""
    return list(
        session.scalars(
            select(Case)
            .where(
                Case.resident_phone == case.resident_phone,
                Case.id != case.id,
                case_filter(ctx.office),
            )
            .order_by(Case.id.desc())
            .limit(20)
        )
    )


def case_page(
    request: Request,
    ctx: StaffContext,
    session: Session,
    rt: Runtime,
    case: Case,
    *,
    status_code: int = 200,
    flash: str = "",
    flash_class: str = "ok",
    revealed: str | None = None,
) -> Response:
    now = rt.clock()
    text, css = countdown(ctx.lang, case, now)
    resident = session.get(Resident, case.resident_id) if case.resident_id else None
    return render(
        request,
        ctx,
        "case.html",
        status_code=status_code,
        nav_active="queue",
        case=case,
        area=area(case),
        due_text=text,
        due_class=css,
        holder=assignee(session, case, ctx.lang),
        routing=_detail(case.routing_evidence or {}),
        timeline=timeline(session, case, ctx.lang),
        resident=resident,
        resident_phone=mask_phone(case.resident_phone),
        revealed=revealed,
        others=other_cases(session, ctx, case),
        grids=grids(session, ctx.office) if ctx.can("supervisor") else [],
        status_labels=status_labels(ctx.lang),
        level_labels=level_labels(ctx.lang),
        flash=flash,
        flash_class=flash_class,
        summary=mask_phones_in_text(case.summary or ""),
    )


@router.get("/cases/{case_ref}")
def case_view(
    request: Request,
    case_ref: str,
    ctx: StaffDep,
    session: SessionDep,
    rt: RuntimeDep,
    done: str | None = None,
) -> Response:
    case = visible_case(session, ctx.office, case_ref)
    _ = translator(ctx.lang)
    flash = _("Done.") if done in ACTIONS else ""
    return case_page(request, ctx, session, rt, case, flash=flash)


@router.get("/find")
def find(code: str, ctx: StaffDep, session: SessionDep) -> Response:
    """A case by its SMS code (`#4821`): the live one, else the latest of that code."""
    digits = code.strip().lstrip("#＃")
    if not digits.isascii() or not digits.isdigit() or not 4 <= len(digits) <= 8:
        raise NotFound("no such case")
    case = session.scalar(
        select(Case)
        .where(or_(Case.open_code == digits, Case.code == digits), case_filter(ctx.office))
        .order_by(Case.open_code.is_(None), Case.id.desc())
        .limit(1)
    )
    if case is None:
        raise NotFound("no such case")
    return RedirectResponse(f"/console/cases/{case.id}", status_code=303)


# ---------------------------------------------------------------- actions

Action = Callable[[Ctx, Case, StaffContext, Any], None]


def _text(form: FormDep, name: str, *, required: str | None, limit: int = MAX_TEXT) -> str:
    value = form.get(name).strip()
    if required is not None and not value:
        raise Unprocessable(required)
    if len(value) > limit:
        raise Unprocessable(f"{name}: longer than {limit} characters")
    return value


def _do_claim(c: Ctx, case: Case, ctx: StaffContext, form: FormDep) -> None:
    case_service.claim(c, case, ctx.actor)


def _do_reply(c: Ctx, case: Case, ctx: StaffContext, form: FormDep) -> None:
    _ = translator(ctx.lang)
    body = _text(form, "body", required=_("Write the message."), limit=600)
    case_service.message_resident(c, case, ctx.actor, body=body, sender=ctx.office.name)
    charge_sms(c.session, c.rt, office_code=ctx.office.code, now=c.now)


def _do_note(c: Ctx, case: Case, ctx: StaffContext, form: FormDep) -> None:
    _ = translator(ctx.lang)
    body = _text(form, "body", required=_("Write the note."))
    case_service.comment(c, case, ctx.actor, body=body)


def _do_assign(c: Ctx, case: Case, ctx: StaffContext, form: FormDep) -> None:
    _ = translator(ctx.lang)
    try:
        phone = normalize_phone(form.get("phone"), region=c.rt.settings.default_region)
    except InvalidPhone as exc:
        raise Unprocessable(_("Assigning needs a phone number.")) from exc
    case_service.assign(c, case, ctx.actor, phone=phone)
    charge_sms(c.session, c.rt, office_code=ctx.office.code, now=c.now)


def _do_transfer(c: Ctx, case: Case, ctx: StaffContext, form: FormDep) -> None:
    _ = translator(ctx.lang)
    code = _text(form, "grid", required=_("Choose a grid."), limit=64)
    target = c.session.scalar(
        select(Region).where(
            Region.code == code,
            Region.level == "grid",
            region_filter(c.session, ctx.office),
        )
    )
    if target is None:
        raise Unprocessable(_("No such grid in your area."))
    case_service.transfer(c, case, ctx.actor, grid=target)


def _do_escalate(c: Ctx, case: Case, ctx: StaffContext, form: FormDep) -> None:
    _ = translator(ctx.lang)
    reason = _text(form, "reason", required=_("Escalating needs a reason."), limit=500)
    case_service.escalate(c, case, ctx.actor, reason=reason)


def _do_misrouted(c: Ctx, case: Case, ctx: StaffContext, form: FormDep) -> None:
    _ = translator(ctx.lang)
    reason = _text(form, "reason", required=_("Say why the grid is wrong."), limit=500)
    case_actions.send_back_misrouted(
        c, case, ctx.actor, reason=reason, office_level=ctx.office.level
    )


def _do_resolve(c: Ctx, case: Case, ctx: StaffContext, form: FormDep) -> None:
    note = _text(form, "note", required=None)
    case_service.resolve(c, case, ctx.actor, note=note)


def _do_reopen(c: Ctx, case: Case, ctx: StaffContext, form: FormDep) -> None:
    _ = translator(ctx.lang)
    reason = _text(form, "reason", required=_("Reopening needs a reason."), limit=500)
    case_actions.reopen_by_office(c, case, ctx.actor, reason=reason)


# action -> (the least role, the service call)
ACTIONS: dict[str, tuple[str, Action]] = {
    "claim": ("handler", _do_claim),
    "reply": ("handler", _do_reply),
    "note": ("handler", _do_note),
    "resolve": ("handler", _do_resolve),
    "reopen": ("handler", _do_reopen),
    "misrouted": ("handler", _do_misrouted),
    "assign": ("supervisor", _do_assign),
    "transfer": ("supervisor", _do_transfer),
    "escalate": ("supervisor", _do_escalate),
}


@router.post("/cases/{case_ref}/reveal")
def reveal(
    request: Request,
    case_ref: str,
    ctx: CsrfDep,
    form: FormDep,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    """Show the resident's number once, for a stated purpose; written to the audit log."""
    case = visible_case(session, ctx.office, case_ref)
    ctx.require("handler")
    _ = translator(ctx.lang)
    purpose = form.get("purpose").strip()
    if len(purpose) < MIN_PURPOSE or len(purpose) > 500:
        return case_page(
            request,
            ctx,
            session,
            rt,
            case,
            status_code=422,
            flash=_("State why you need the number (at least 4 characters)."),
            flash_class="error",
        )
    write_audit(
        session, ctx, action="reveal_phone", now=rt.clock(), case_id=case.id, purpose=purpose
    )
    return case_page(request, ctx, session, rt, case, revealed=case.resident_phone)


@router.post("/cases/{case_ref}/{action}")
def act(
    request: Request,
    case_ref: str,
    action: str,
    ctx: CsrfDep,
    form: FormDep,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    case = visible_case(session, ctx.office, case_ref)
    if action not in ACTIONS:
        raise NotFound("no such action")
    role, run = ACTIONS[action]
    ctx.require(role)
    try:
        # A savepoint: a refused action leaves nothing behind, and the page
        # shows why with the action's status (409, 422, 429).
        with session.begin_nested():
            locked = case_lookups.lock(session, case)
            assert locked is not None
            run(Ctx(session=session, rt=rt, now=rt.clock()), locked, ctx, form)
            session.flush()
    except DomainError as exc:
        session.refresh(case)
        return case_page(
            request,
            ctx,
            session,
            rt,
            case,
            status_code=exc.status_code,
            flash=exc.message,
            flash_class="error",
        )
    return RedirectResponse(f"/console/cases/{case.id}?done={action}", status_code=303)
