"""The queue (/console): status cards, filters, the table, bulk actions, live
refresh and CSV export of the office's cases."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.api.limits import charge_sms
from app.cases import changes as case_service
from app.cases import lookups as case_lookups
from app.console.audit import write_audit
from app.console.auth import CsrfDep, FormDep, StaffContext, StaffDep
from app.console.csv_out import csv_response
from app.console.labels import area, assignee, countdown, level_labels, status_labels
from app.console.queue import (
    VIEWS,
    Filters,
    categories,
    counts,
    filtered,
    grids,
    page,
    parse_filters,
)
from app.console.render import render, translator
from app.console.router import router
from app.context import Ctx
from app.deps import RuntimeDep, SessionDep
from app.directory.offices import visible_case
from app.errors import DomainError, NotFound, Unprocessable
from app.models.cases import Case
from app.runtime import Runtime
from sms.phones import InvalidPhone, mask_phone, mask_phones_in_text, normalize_phone

SUMMARY_CHARS = 40
MAX_BULK = 100
MAX_EXPORT = 10_000


def view_labels(lang: str) -> dict[str, str]:
    _ = translator(lang)
    return {
        "to_claim": _("To claim"),
        "in_progress": _("In progress"),
        "due_soon": _("Due soon"),
        "overdue": _("Overdue"),
        "to_rate": _("Awaiting rating"),
        "all": _("All"),
    }


def row_view(session: Session, case: Case, lang: str, now: datetime) -> dict[str, Any]:
    text, css = countdown(lang, case, now)
    summary = mask_phones_in_text(case.summary or "")
    return {
        "id": case.id,
        "code": case.code,
        "created_at": case.created_at,
        "area": area(case),
        "category": case.category or "—",
        "summary": summary[:SUMMARY_CHARS] + ("…" if len(summary) > SUMMARY_CHARS else ""),
        "status": case.status,
        "level": case.level,
        "priority": case.priority,
        "due_text": text,
        "due_class": css,
        "assignee": assignee(session, case, lang),
        "updated_at": case.updated_at,
    }


def _live(
    session: Session, ctx: StaffContext, filters: Filters, now: datetime
) -> tuple[dict[str, Any], str]:
    """What the live part of the page shows, and its ETag."""
    found = counts(session, ctx.office, filters, now)
    cases, more = page(session, ctx.office, filters, now)
    rows = [row_view(session, c, ctx.lang, now) for c in cases]
    fingerprint = json.dumps(
        [
            ctx.lang,
            ctx.staff.role,
            filters.params(),
            now.strftime("%Y%m%d%H%M"),  # countdowns move by the minute
            found,
            [(r["id"], r["updated_at"].isoformat()) for r in rows],
            more,
        ],
        sort_keys=True,
    )
    etag = '"' + hashlib.sha256(fingerprint.encode()).hexdigest()[:32] + '"'
    values = {
        "filters": filters,
        "counts": found,
        "rows": rows,
        "more": more,
        "views": VIEWS,
        "view_labels": view_labels(ctx.lang),
        "status_labels": status_labels(ctx.lang),
        "level_labels": level_labels(ctx.lang),
        "query": lambda **changes: urlencode(filters.params(**changes)),
        "etag": etag,
    }
    return values, etag


@router.get("")
def queue(request: Request, ctx: StaffDep, session: SessionDep, rt: RuntimeDep) -> Response:
    filters = parse_filters(request.query_params.get)
    now = rt.clock()
    values, etag = _live(session, ctx, filters, now)
    return render(
        request,
        ctx,
        "queue.html",
        nav_active="queue",
        headers={"ETag": etag},
        grids=grids(session, ctx.office),
        categories=categories(session, ctx.office),
        live_url="/console/live?" + urlencode(filters.params()),
        back=urlencode(filters.params()),
        **values,
    )


@router.get("/live")
def live(request: Request, ctx: StaffDep, session: SessionDep, rt: RuntimeDep) -> Response:
    """The cards and the table alone, for the page's polling; 304 while nothing changed."""
    filters = parse_filters(request.query_params.get)
    values, etag = _live(session, ctx, filters, rt.clock())
    if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "no-cache"})
    response = render(request, ctx, "queue_live.html", headers={"ETag": etag}, **values)
    response.headers["Cache-Control"] = "no-cache"
    return response


# ---------------------------------------------------------------- bulk actions

BULK_ROLES = {
    "claim": "handler",
    "resolve": "handler",
    "assign": "supervisor",
    "escalate": "supervisor",
}


def bulk_action(ctx: StaffContext, rt: Runtime, form: FormDep) -> Callable[[Ctx, Case], None]:
    """The action the bulk form asks for, checked before any case is touched."""
    _ = translator(ctx.lang)
    name = form.get("action")
    if name not in BULK_ROLES:
        raise Unprocessable(_("Choose an action."))
    ctx.require(BULK_ROLES[name])
    actor = ctx.actor
    if name == "claim":
        return lambda c, case: case_service.claim(c, case, actor)
    if name == "resolve":
        note = form.get("note").strip()[:2000]
        return lambda c, case: case_service.resolve(c, case, actor, note=note)
    if name == "escalate":
        reason = form.get("reason").strip()[:500]
        if not reason:
            raise Unprocessable(_("Escalating needs a reason."))
        return lambda c, case: case_service.escalate(c, case, actor, reason=reason)
    try:
        phone = normalize_phone(form.get("phone"), region=rt.settings.default_region)
    except InvalidPhone as exc:
        raise Unprocessable(_("Assigning needs a phone number.")) from exc

    def _assign(c: Ctx, case: Case) -> None:
        case_service.assign(c, case, actor, phone=phone)
        charge_sms(c.session, rt, office_code=ctx.office.code, now=c.now)

    return _assign


@router.post("/bulk")
def bulk(
    request: Request, ctx: CsrfDep, form: FormDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    """Apply one action to the ticked cases, each on its own: one failing stops none."""
    _ = translator(ctx.lang)
    ids = form.getlist("case")
    if not ids:
        raise Unprocessable(_("Tick at least one case."))
    if len(ids) > MAX_BULK:
        raise Unprocessable(_("At most 100 cases at once."))
    action = bulk_action(ctx, rt, form)
    now = rt.clock()
    results: list[dict[str, Any]] = []
    for raw in dict.fromkeys(ids):
        try:
            case = visible_case(session, ctx.office, raw)
        except NotFound:
            results.append({"ref": raw[:12], "id": None, "ok": False, "reason": _("Not found")})
            continue
        try:
            with session.begin_nested():
                locked = case_lookups.lock(session, case)
                assert locked is not None
                action(Ctx(session=session, rt=rt, now=now), locked)
                session.flush()
            results.append({"ref": case.code, "id": case.id, "ok": True, "reason": ""})
        except DomainError as exc:
            results.append({"ref": case.code, "id": case.id, "ok": False, "reason": exc.message})
    back = form.get("back")
    return render(
        request,
        ctx,
        "bulk_result.html",
        nav_active="queue",
        results=results,
        action=form.get("action"),
        back_url="/console" + (f"?{back}" if back and back.isprintable() else ""),
        ok_count=sum(1 for r in results if r["ok"]),
    )


# ---------------------------------------------------------------- export

CSV_COLUMNS = (
    "code",
    "id",
    "created_at",
    "area",
    "category",
    "status",
    "level",
    "priority",
    "claim_due_at",
    "resolve_due_at",
    "assignee",
    "resident",
    "summary",
)


@router.post("/export")
def export(
    request: Request, ctx: CsrfDep, form: FormDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    """The current filter's cases as CSV (phones masked); written to the audit log."""
    ctx.require("supervisor")
    filters = parse_filters(lambda name: form.get(name) or None)
    now = rt.clock()
    cases = list(
        session.scalars(
            filtered(ctx.office, filters, now).order_by(Case.id.desc()).limit(MAX_EXPORT)
        )
    )
    tz = rt.settings.tz

    def _t(value: datetime | None) -> str:
        return value.astimezone(tz).isoformat(timespec="minutes") if value else ""

    rows = [
        [
            case.code,
            case.id,
            _t(case.created_at),
            area(case),
            case.category or "",
            case.status,
            case.level,
            case.priority,
            _t(case.claim_due_at),
            _t(case.resolve_due_at),
            assignee(session, case, ctx.lang),
            mask_phone(case.resident_phone),
            mask_phones_in_text(case.summary or ""),
        ]
        for case in cases
    ]
    write_audit(
        session,
        ctx,
        action="export_csv",
        now=now,
        detail={"filters": filters.params(), "rows": len(cases)},
    )
    stamp = now.astimezone(tz).strftime("%Y%m%d-%H%M")
    # Every cell is neutralised: names and addresses come from imported files too.
    return csv_response(f"cases-{ctx.office.code}-{stamp}.csv", CSV_COLUMNS, rows)
