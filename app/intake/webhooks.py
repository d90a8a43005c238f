"""The gateway's webhooks: inbound SMS (`POST /sms/inbound`) and delivery
status callbacks (`POST /sms/status`).

The inbound webhook stores its message (one INSERT, committed) before it
answers; with the database unreachable it appends the message to the
fsync'd spool instead (app/intake/spool.py). Both endpoints are served by
`GridlineApp` ahead of FastAPI's middleware stack and router, which cost
about as much CPU per webhook as the endpoint's own work; each is a FastAPI
route too (the API docs list it), and its errors render as the app's
exception handlers render them: a `DomainError` as its 4xx JSON, an
unreachable database as 503.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send
from twilio.twiml.messaging_response import MessagingResponse

from app.db import database_unavailable
from app.delivery.status import record_delivery_status
from app.errors import BadRequest, DomainError, Forbidden, PayloadTooLarge, UnsupportedMediaType
from app.intake.spool import Spool
from app.intake.store import InboundSms, store
from app.runtime import Runtime
from sms.phones import InvalidPhone, mask_phone, normalize_phone, same_number
from sms.signature import is_valid_signature, signed_url

log = logging.getLogger("gridline.web")

INBOUND_PATH = "/sms/inbound"
STATUS_PATH = "/sms/status"
EMPTY_TWIML = str(MessagingResponse())
MAX_BODY_CHARS = 1600  # Twilio's own limit for one message body


class GridlineApp(FastAPI):
    """FastAPI, with the gateway's webhooks served before its middleware stack."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = _FAST.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is not None and scope["method"] == "POST":
            scope["app"] = self  # what Starlette sets for `request.app`
            request = Request(scope, receive)
            try:
                response = await endpoint(request)
            except DomainError as exc:
                response = await domain_error(request, exc)
            except Exception as exc:
                if not database_unavailable(exc):
                    raise  # uvicorn logs it and answers 500, as FastAPI's stack would
                response = await database_down(request, exc)
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def domain_error(_request: Request, exc: Exception) -> Response:
    """A `DomainError` as JSON with its status: `{"error": code, "detail": why}`."""
    assert isinstance(exc, DomainError)
    return JSONResponse({"error": exc.code, "detail": exc.message}, status_code=exc.status_code)


async def database_down(_request: Request, exc: Exception) -> Response:
    """The database is unreachable (down, restarting): say so, and when to retry."""
    log.warning("database unavailable: %s", exc.__class__.__name__)
    return JSONResponse(
        {"error": "unavailable", "detail": "database unavailable; retry later"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def read_form(request: Request, rt: Runtime) -> dict[str, str]:
    """Read a form-encoded webhook body within the size limit, and check its signature."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("expected application/x-www-form-urlencoded")
    limit = rt.settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            declared_size = int(declared)
        except ValueError as exc:
            raise BadRequest("bad Content-Length") from exc
        if declared_size > limit:
            raise PayloadTooLarge(f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(f"body larger than {limit} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("body is not UTF-8 form data") from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        if "\x00" in key or "\x00" in value:
            raise BadRequest("NUL byte in form data")
        form.setdefault(key, value)
    settings = rt.settings
    if settings.validate_signatures:
        assert settings.public_url and settings.twilio_auth_token
        # The route matched this exact path; `request.url` would build and parse
        # a whole URL for it on every webhook.
        query = request.scope.get("query_string", b"").decode("utf-8", "replace")
        url = signed_url(settings.public_url, request.scope["path"], query)
        if not is_valid_signature(
            auth_token=settings.twilio_auth_token,
            url=url,
            params=form,
            signature=request.headers.get("x-twilio-signature"),
        ):
            raise Forbidden("invalid or missing X-Twilio-Signature")
    return form


async def sms_inbound(request: Request) -> Response:
    """Twilio Messaging webhook: store the message, answer empty TwiML at once."""
    rt: Runtime = request.app.state.runtime
    started = time.perf_counter()
    form = await read_form(request, rt)
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    if not sid or len(sid) > 64:
        raise BadRequest("MessageSid is missing or too long")
    try:
        sender = normalize_phone(form.get("From", ""), region=rt.settings.default_region)
    except InvalidPhone as exc:
        raise BadRequest(f"From is not a phone number: {exc}") from exc
    to = form.get("To", "")
    hotline = rt.settings.hotline_number
    if len(to) > 32:  # the column's width; every real number is far shorter
        raise BadRequest("To is longer than 32 characters")
    if to and hotline and not same_number(to, hotline, region=rt.settings.default_region):
        # Another number's texts pointed at this webhook (a misconfigured
        # second number): they are not the hotline's to answer from it.
        raise BadRequest(f"To {mask_phone(to)} is not the hotline number (GRIDLINE_HOTLINE_NUMBER)")
    body = form.get("Body", "")
    if len(body) > MAX_BODY_CHARS:
        raise BadRequest(f"Body longer than {MAX_BODY_CHARS} characters")
    extra: dict[str, str] = {k: form[k] for k in ("Latitude", "Longitude", "NumMedia") if k in form}

    sms = InboundSms(
        message_sid=sid,
        from_phone=sender,
        to_phone=to or None,
        body=body,
        params=extra,
        received_at=rt.clock(),
    )
    outcome = await run_in_threadpool(_store_or_spool, rt, request.app.state.spool, sms)
    if outcome == "spooled":
        log.warning("inbound %s from %s spooled: database unavailable", sid, mask_phone(sender))
    elif log.isEnabledFor(logging.DEBUG):
        # uvicorn's access log already has a line per webhook; no masking
        # work on the hot path unless someone reads it.
        log.debug("inbound %s from %s (%s)", sid, mask_phone(sender), outcome)
    worker = request.app.state.worker
    if worker is not None and outcome != "duplicate":
        worker.wake()
    request.app.state.webhook_latency.observe(time.perf_counter() - started)
    return Response(content=EMPTY_TWIML, media_type="text/xml")


def _store_or_spool(rt: Runtime, spool: Spool, sms: InboundSms) -> str:
    """Store `sms` (committed when this returns): `stored`, or `duplicate` when
    its SID was stored before; with the database unreachable, append it to the
    spool (fsync'd): `spooled`. SpoolUnavailable (a 503) when neither can."""
    try:
        with rt.engine.begin() as connection:  # Core: nothing here needs an ORM session
            created = store(connection, sms)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        spool.append(sms)
        return "spooled"
    return "stored" if created else "duplicate"


async def sms_status(request: Request) -> Response:
    """Twilio status callback: record the delivery status, never going backwards."""
    rt: Runtime = request.app.state.runtime
    form = await read_form(request, rt)
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = form.get("MessageStatus") or form.get("SmsStatus") or ""
    if not sid or not status:
        raise BadRequest("MessageSid and MessageStatus are required")

    def _record() -> bool:
        with rt.sessions() as session, session.begin():
            return record_delivery_status(
                session,
                provider_sid=sid,
                status=status,
                error_code=form.get("ErrorCode") or None,
                now=rt.clock(),
            )

    known = await run_in_threadpool(_record)
    if not known:
        log.info("status callback for %s before its SID was recorded; kept", sid)
    return Response(status_code=204)


# Served by `GridlineApp` ahead of the stack. Status callbacks come too: every
# SMS sent brings one or more (sent, delivered, failed), more than the inbound.
_FAST: dict[str, Callable[[Request], Awaitable[Response]]] = {
    INBOUND_PATH: sms_inbound,
    STATUS_PATH: sms_status,
}


def install_sms_webhooks(app: FastAPI) -> None:
    """Register both webhooks as routes (served, and listed in the API docs),
    and the error handlers they and the rest of the app answer with."""
    from sqlalchemy import exc as sa_exc

    app.add_exception_handler(DomainError, domain_error)
    for error in (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError):
        app.add_exception_handler(error, database_down)
    app.add_api_route(
        INBOUND_PATH,
        sms_inbound,
        methods=["POST"],
        response_class=Response,
        tags=["sms"],
        responses={
            200: {
                "description": "Stored (or a SID stored before): empty TwiML.",
                "content": {"text/xml": {}},
            },
            400: _refusal("MessageSid, From, To or Body missing or invalid; or not UTF-8."),
            **WEBHOOK_REFUSALS,
        },
        openapi_extra=_form_body(
            {"MessageSid", "From", "To", "Body", "Latitude", "Longitude", "NumMedia"}
        ),
    )
    app.add_api_route(
        STATUS_PATH,
        sms_status,
        methods=["POST"],
        response_class=Response,
        tags=["sms"],
        responses={
            204: {"description": "Recorded (kept until its SID is known, if it is not yet)."},
            400: _refusal("MessageSid or MessageStatus missing; or not UTF-8."),
            **WEBHOOK_REFUSALS,
        },
        openapi_extra=_form_body({"MessageSid", "MessageStatus", "ErrorCode"}),
    )


def _refusal(description: str) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
        "required": ["error", "detail"],
    }
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _form_body(fields: set[str]) -> dict[str, Any]:
    """The gateway's form-encoded body, for the API docs (read by `read_form`)."""
    properties = {name: {"type": "string"} for name in sorted(fields)}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": properties}
                }
            },
        }
    }


WEBHOOK_REFUSALS: dict[int | str, dict[str, Any]] = {
    403: _refusal("No X-Twilio-Signature, or one that does not match the body and URL."),
    413: _refusal("The body is larger than GRIDLINE_MAX_REQUEST_BYTES."),
    415: _refusal("The body is not application/x-www-form-urlencoded."),
    503: {
        **_refusal("The database is unreachable (and, inbound, the spool too): retry."),
        "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
    },
}
