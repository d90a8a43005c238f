"""`/api/v1/webhooks`: an office registers URLs for case events and reads deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.deps import AUTH_ERRORS, READ_ERRORS, WRITE_ERRORS, CallerDep, WriterDep
from app.delivery.office_webhooks import WEBHOOK_EVENTS, check_url, new_secret
from app.deps import RuntimeDep, SessionDep
from app.directory.apikeys import Caller
from app.directory.offices import parse_id
from app.errors import NotFound
from app.models.offices import WebhookAttempt, WebhookDelivery, WebhookEndpoint

router = APIRouter(prefix="/api/v1", tags=["webhooks"])

EventType = Literal[WEBHOOK_EVENTS]  # type: ignore[valid-type]


class WebhookIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"url": "https://office.example/gridline", "events": ["case.escalated"]}]
        },
    )
    url: str = Field(min_length=8, max_length=2000, description="http(s), a public address")
    events: list[EventType] = Field(min_length=1, max_length=len(WEBHOOK_EVENTS))


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    active: bool
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="`whsec_…`: verify `webhook-signature` with it")


class AttemptOut(BaseModel):
    at: datetime
    status_code: int | None
    outcome: str
    error: str | None
    duration_ms: int | None


class DeliveryOut(BaseModel):
    id: str = Field(description="the `webhook-id` header")
    type: str
    case_id: int | None
    status: Literal["pending", "sending", "delivered", "failed"]
    attempts: list[AttemptOut]
    created_at: datetime
    delivered_at: datetime | None


def _out(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.events,
        "active": endpoint.active,
        "created_at": endpoint.created_at,
    }


def _endpoint(session: Session, caller: Caller, webhook_id: str) -> WebhookEndpoint:
    row_id = parse_id(webhook_id)
    if row_id is None:
        raise NotFound("no such webhook")
    endpoint = session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == row_id,
            WebhookEndpoint.office_code == caller.office.code,
        )
    )
    if endpoint is None:
        raise NotFound("no such webhook")
    return endpoint


@router.post(
    "/webhooks",
    response_model=WebhookCreated,
    status_code=201,
    responses={k: v for k, v in WRITE_ERRORS.items() if k not in (404, 409)},
)
def create_webhook(
    body: WebhookIn, caller: WriterDep, session: SessionDep, rt: RuntimeDep
) -> dict[str, Any]:
    """Register a URL for case events of the office's area. The secret is shown here only."""
    check_url(body.url, allow_private=rt.settings.webhook_allow_private)
    endpoint = WebhookEndpoint(
        office_code=caller.office.code,
        url=body.url,
        secret=new_secret(),
        events=sorted(set(body.events)),
        active=True,
        created_at=rt.clock(),
    )
    session.add(endpoint)
    session.flush()
    return {**_out(endpoint), "secret": endpoint.secret}


@router.get("/webhooks", response_model=list[WebhookOut], responses=AUTH_ERRORS)
def list_webhooks(caller: CallerDep, session: SessionDep) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.office_code == caller.office.code)
        .order_by(WebhookEndpoint.id)
    )
    return [_out(e) for e in rows]


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=204,
    response_class=Response,
    responses={k: v for k, v in WRITE_ERRORS.items() if k not in (409, 422)},
)
def delete_webhook(webhook_id: str, caller: WriterDep, session: SessionDep) -> Response:
    """Stop deliveries to the URL (pending ones are dropped; the rows are kept)."""
    _endpoint(session, caller, webhook_id).active = False
    return Response(status_code=204)


@router.get(
    "/webhooks/{webhook_id}/deliveries", response_model=list[DeliveryOut], responses=READ_ERRORS
)
def list_deliveries(
    webhook_id: str,
    caller: CallerDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    """The latest deliveries to the URL, newest first, each with every attempt."""
    endpoint = _endpoint(session, caller, webhook_id)
    deliveries = list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint.id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )
    attempts: dict[int, list[WebhookAttempt]] = {}
    if deliveries:
        for attempt in session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(WebhookAttempt.id)
        ):
            attempts.setdefault(attempt.delivery_id, []).append(attempt)
    return [
        {
            "id": d.message_id,
            "type": d.event_type,
            "case_id": d.case_id,
            "status": d.status,
            "attempts": [
                {
                    "at": a.at,
                    "status_code": a.status_code,
                    "outcome": a.outcome,
                    "error": a.error,
                    "duration_ms": a.duration_ms,
                }
                for a in attempts.get(d.id, [])
            ],
            "created_at": d.created_at,
            "delivered_at": d.delivered_at,
        }
        for d in deliveries
    ]
