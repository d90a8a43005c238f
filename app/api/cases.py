"""`/api/v1/cases`: list, read and act on the office's cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select

from app.api import idempotency
from app.api.deps import READ_ERRORS, WRITE_ERRORS, CallerDep, WriterDep
from app.api.limits import charge_sms
from app.api.schemas import (
    AssignBody,
    CaseDetail,
    CasePage,
    ClaimBody,
    CommentBody,
    EscalateBody,
    IsoTime,
    MessageBody,
    ResolveBody,
    TransferBody,
    case_detail,
)
from app.cases import changes as case_service
from app.cases import lookups as case_lookups
from app.cases.payload import Level, Status, case_out
from app.context import Actor, Ctx
from app.deps import RuntimeDep, SessionDep
from app.directory.apikeys import Caller
from app.directory.offices import case_filter, region_filter, visible_case
from app.errors import Unprocessable
from app.models.cases import Case
from app.models.directory import Region
from app.runtime import Runtime
from sms.phones import InvalidPhone, normalize_phone

router = APIRouter(prefix="/api/v1", tags=["cases"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=idempotency.KEY_PATTERN,
        description="Any unique string (≤ 200 chars); a retry with the same key replays "
        "the first successful answer with `Idempotent-Replayed: true`.",
    ),
]


@router.get("/cases", response_model=CasePage, responses=READ_ERRORS)
def list_cases(
    caller: CallerDep,
    session: SessionDep,
    rt: RuntimeDep,
    status: Status | None = None,
    level: Level | None = None,
    grid: Annotated[str | None, Query(max_length=64, description="grid code")] = None,
    town: Annotated[str | None, Query(max_length=64, description="town code")] = None,
    updated_since: Annotated[
        IsoTime | None, Query(description="ISO-8601 with a zone; changed at or after")
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{1,9}$",
            description="`next_cursor` of the previous page (treat it as opaque)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The office's cases, newest first (by id, so pages never skip or repeat a case).

    Poll for changes with `updated_since` and follow `next_cursor` to the end.
    """
    stmt = select(Case).where(case_filter(caller.office))
    if status is not None:
        stmt = stmt.where(Case.status == status)
    if level is not None:
        stmt = stmt.where(Case.level == level)
    if grid is not None:
        stmt = stmt.where(
            Case.grid_id == select(Region.id).where(Region.code == grid).scalar_subquery()
        )
    if town is not None:
        stmt = stmt.where(
            Case.town_id == select(Region.id).where(Region.code == town).scalar_subquery()
        )
    if updated_since is not None:
        stmt = stmt.where(Case.updated_at >= updated_since)
    if cursor is not None:
        stmt = stmt.where(Case.id < int(cursor))
    rows = list(session.scalars(stmt.order_by(Case.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    locale = rt.settings.locale
    return {
        "items": [case_out(session, c, locale) for c in rows],
        "next_cursor": str(rows[-1].id) if more and rows else None,
    }


@router.get("/cases/{case_id}", response_model=CaseDetail, responses=READ_ERRORS)
def get_case(case_id: str, caller: CallerDep, session: SessionDep, rt: RuntimeDep) -> Any:
    """One case with its timeline (every state change: when, what, who, through which channel)."""
    case = visible_case(session, caller.office, case_id)
    return case_detail(session, case, rt.settings.locale)


Action = Callable[[Ctx, Case, Actor], None]


def _with_sms(ctx: Ctx, caller: Caller, send: Callable[[], None]) -> None:
    """Run an action that texts someone, charging the office's daily SMS quota."""
    send()
    charge_sms(ctx.session, ctx.rt, office_code=caller.office.code, now=ctx.now)


def _act(
    request: Request,
    *,
    case_id: str,
    body: BaseModel,
    caller: Caller,
    session: SessionDep,
    rt: Runtime,
    idempotency_key: str | None,
    action: Action,
) -> Any:
    claimed: idempotency.Claimed | None = None
    if idempotency_key is not None:
        print_ = idempotency.fingerprint(request.method, request.url.path, body.model_dump_json())
        got = idempotency.claim_key(
            session, office_code=caller.office.code, key=idempotency_key, fingerprint=print_
        )
        if not isinstance(got, idempotency.Claimed):
            return JSONResponse(
                got.body, status_code=got.status_code, headers={"Idempotent-Replayed": "true"}
            )
        claimed = got
    case = visible_case(session, caller.office, case_id)
    locked = case_lookups.lock(session, case)
    assert locked is not None
    ctx = Ctx(session=session, rt=rt, now=rt.clock())
    action(ctx, locked, Actor(name=caller.actor_name, channel="api"))
    session.flush()
    answer = case_detail(session, locked, rt.settings.locale)
    if claimed is not None:
        claimed.keep(200, answer)
    return answer


@router.post("/cases/{case_id}/claim", response_model=CaseDetail, responses=WRITE_ERRORS)
def claim(
    request: Request,
    case_id: str,
    caller: WriterDep,
    session: SessionDep,
    rt: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
    body: ClaimBody | None = None,
) -> Any:
    """Claim an `open` case for the office (stops the claim deadline); the resident is told."""
    return _act(
        request,
        case_id=case_id,
        body=body or ClaimBody(),
        caller=caller,
        session=session,
        rt=rt,
        idempotency_key=idempotency_key,
        action=lambda ctx, case, actor: case_service.claim(ctx, case, actor),
    )


@router.post("/cases/{case_id}/assign", response_model=CaseDetail, responses=WRITE_ERRORS)
def assign(
    request: Request,
    case_id: str,
    body: AssignBody,
    caller: WriterDep,
    session: SessionDep,
    rt: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Hand an `open` or `claimed` case to any phone (a member, a bureau's duty phone).

    The phone is texted the case and can then answer it with the SMS grammar
    (`4821 收到`, `4821 <reply>`, `4821 办结 …`) like a grid worker.
    """
    try:
        phone = normalize_phone(body.phone, region=rt.settings.default_region)
    except InvalidPhone as exc:
        raise Unprocessable(f"phone: {exc}") from exc
    return _act(
        request,
        case_id=case_id,
        body=body,
        caller=caller,
        session=session,
        rt=rt,
        idempotency_key=idempotency_key,
        action=lambda ctx, case, actor: _with_sms(
            ctx, caller, lambda: case_service.assign(ctx, case, actor, phone=phone)
        ),
    )


@router.post("/cases/{case_id}/escalate", response_model=CaseDetail, responses=WRITE_ERRORS)
def escalate(
    request: Request,
    case_id: str,
    body: EscalateBody,
    caller: WriterDep,
    session: SessionDep,
    rt: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Escalate to the next level (its duty phones are texted); 409 at the city level."""
    return _act(
        request,
        case_id=case_id,
        body=body,
        caller=caller,
        session=session,
        rt=rt,
        idempotency_key=idempotency_key,
        action=lambda ctx, case, actor: case_service.escalate(ctx, case, actor, reason=body.reason),
    )


@router.post("/cases/{case_id}/resolve", response_model=CaseDetail, responses=WRITE_ERRORS)
def resolve(
    request: Request,
    case_id: str,
    body: ResolveBody,
    caller: WriterDep,
    session: SessionDep,
    rt: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Resolve an `open` or `claimed` case; the resident is told and asked to rate it."""
    return _act(
        request,
        case_id=case_id,
        body=body,
        caller=caller,
        session=session,
        rt=rt,
        idempotency_key=idempotency_key,
        action=lambda ctx, case, actor: case_service.resolve(ctx, case, actor, note=body.note),
    )


@router.post("/cases/{case_id}/comment", response_model=CaseDetail, responses=WRITE_ERRORS)
def comment(
    request: Request,
    case_id: str,
    body: CommentBody,
    caller: WriterDep,
    session: SessionDep,
    rt: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """An internal note on the timeline (nobody is texted); allowed in every status."""
    return _act(
        request,
        case_id=case_id,
        body=body,
        caller=caller,
        session=session,
        rt=rt,
        idempotency_key=idempotency_key,
        action=lambda ctx, case, actor: case_service.comment(ctx, case, actor, body=body.body),
    )


@router.post("/cases/{case_id}/message", response_model=CaseDetail, responses=WRITE_ERRORS)
def message(
    request: Request,
    case_id: str,
    body: MessageBody,
    caller: WriterDep,
    session: SessionDep,
    rt: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """An SMS to the resident from the hotline number, signed with the office's name.

    409 once the case is closed.
    """
    office_name = caller.office.name
    return _act(
        request,
        case_id=case_id,
        body=body,
        caller=caller,
        session=session,
        rt=rt,
        idempotency_key=idempotency_key,
        action=lambda ctx, case, actor: _with_sms(
            ctx,
            caller,
            lambda: case_service.message_resident(
                ctx, case, actor, body=body.body, sender=office_name
            ),
        ),
    )


@router.post("/cases/{case_id}/transfer", response_model=CaseDetail, responses=WRITE_ERRORS)
def transfer(
    request: Request,
    case_id: str,
    body: TransferBody,
    caller: WriterDep,
    session: SessionDep,
    rt: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Move an `open` or `claimed` case to another grid of the office's area.

    The case starts again at grid level and is forwarded to that grid's team.
    """

    def _do(ctx: Ctx, case: Case, actor: Actor) -> None:
        target = session.scalar(
            select(Region).where(
                Region.code == body.grid,
                Region.level == "grid",
                region_filter(session, caller.office),
            )
        )
        if target is None:
            raise Unprocessable(f"no grid {body.grid!r} in the office's area")
        case_service.transfer(ctx, case, actor, grid=target)

    return _act(
        request,
        case_id=case_id,
        body=body,
        caller=caller,
        session=session,
        rt=rt,
        idempotency_key=idempotency_key,
        action=_do,
    )
