"""The HTTP application: SMS webhooks, health, metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from twilio.twiml.messaging_response import MessagingResponse

from app.api import install_api
from app.console import install_console
from app.db import database_unavailable
from app.deps import RuntimeDep
from app.errors import BadRequest, DomainError, Forbidden, PayloadTooLarge, UnsupportedMediaType
from app.gateways import build_gateway
from app.ingest import SPILL_DIR, Incoming, IngestWriter
from app.metrics import build_registry
from app.outbox import record_delivery_status
from app.runtime import Runtime, settle_heap
from app.settings import Settings
from app.spool import Spool
from app.worker import WorkerThread
from app.worker_process import WorkerProcess
from sms.gateway import Gateway
from sms.phones import InvalidPhone, mask_phone, normalize_phone
from sms.signature import is_valid_signature, signed_url

log = logging.getLogger("gridline.web")

EMPTY_TWIML = str(MessagingResponse())
MAX_BODY_CHARS = 1600  # Twilio's own limit for one message body
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


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


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    gateway: Gateway | None = None,
    start_worker: bool = True,
    worker_process: bool = False,
    gateway_echo: Callable[[str], None] | None = None,
    freeze_heap: bool = False,
) -> FastAPI:
    """Build the app. Engines, gateways and threads are made in the lifespan.

    The worker runs on a thread of this process, or with `worker_process` in
    a child process (what `gridline serve` does by default). `freeze_heap`
    (`gridline serve`): once started, `app.runtime.settle_heap`.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or Runtime.build(settings or Settings())
        gw = gateway or build_gateway(rt.settings, echo=gateway_echo)
        worker: WorkerThread | WorkerProcess | None = None
        if start_worker and worker_process:
            worker = WorkerProcess(rt.settings)
        elif start_worker:
            worker = WorkerThread(rt, gw)
        spool = Spool(rt.settings.spool_path)
        spill = Spool(rt.settings.spool_path / SPILL_DIR)  # the group commit's own
        ingest = IngestWriter(rt, spill=spill, replayed=worker.wake if worker is not None else None)
        app.state.runtime = rt
        app.state.ingest = ingest
        app.state.worker = worker
        app.state.spool = spool
        app.state.metrics, app.state.webhook_latency = build_registry(rt, spool, spill)
        # Messages spooled while the database was down, before a restart.
        try:
            for kept in (spill, spool):  # spilled first: they were answered earlier
                await run_in_threadpool(kept.replay, rt.sessions)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            log.warning("spool not replayed at start-up: database unavailable")
        ingest.start()
        if worker is not None:
            worker.start()
        if freeze_heap:
            settle_heap()
        try:
            yield
        finally:
            ingest.stop()
            if worker is not None:
                worker.stop()
            if gateway is None:
                gw.close()
            if runtime is None:
                rt.close()

    app = FastAPI(
        title="Gridline",
        version="0.1.0",
        description="SMS hotline routing residents' requests to their grid's service team.",
        lifespan=lifespan,
        # Gridline's metrics are Prometheus (/metrics). FastAPI's OpenTelemetry
        # hook would otherwise look up the (unconfigured) global providers on
        # every request: a tenth of a webhook's CPU under load.
        telemetry=NO_TELEMETRY,
    )

    @app.exception_handler(DomainError)
    async def _domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"error": exc.code, "detail": exc.message}, status_code=exc.status_code)

    async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
        # The database is unreachable (down, restarting): say so, and when to retry.
        log.warning("database unavailable: %s", exc.__class__.__name__)
        return JSONResponse(
            {"error": "unavailable", "detail": "database unavailable; retry later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    for error in (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError):
        app.add_exception_handler(error, _database_down)

    @app.post("/sms/inbound", response_class=Response, tags=["sms"])
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
        body = form.get("Body", "")
        if len(body) > MAX_BODY_CHARS:
            raise BadRequest(f"Body longer than {MAX_BODY_CHARS} characters")
        extra: dict[str, str] = {
            k: form[k] for k in ("Latitude", "Longitude", "NumMedia") if k in form
        }

        incoming = Incoming(
            message_sid=sid,
            from_phone=sender,
            to_phone=form.get("To") or None,
            body=body,
            params=extra,
            received_at=rt.clock(),
        )
        writer: IngestWriter = request.app.state.ingest
        try:
            # Stored (committed, with other webhooks' messages) before we answer.
            created = await asyncio.wrap_future(writer.submit(incoming))
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            # Accepted all the same: durable in the spool, stored when the
            # database is back (app/spool.py). SpoolUnavailable is a 503.
            spool: Spool = request.app.state.spool
            await run_in_threadpool(
                lambda: spool.append(
                    message_sid=sid,
                    from_phone=sender,
                    to_phone=incoming.to_phone,
                    body=body,
                    params=extra,
                    received_at=incoming.received_at,
                )
            )
            log.warning(
                "inbound %s from %s spooled: database unavailable (%s)",
                sid,
                mask_phone(sender),
                exc.__class__.__name__,
            )
            request.app.state.webhook_latency.observe(time.perf_counter() - started)
            return Response(content=EMPTY_TWIML, media_type="text/xml")
        # DEBUG: uvicorn's access log already has a line per webhook; no masking
        # work on the hot path unless someone reads it.
        if log.isEnabledFor(logging.DEBUG):
            duplicate = "" if created else " (duplicate)"
            log.debug("inbound %s from %s%s", sid, mask_phone(sender), duplicate)
        worker = request.app.state.worker
        if created and worker is not None:
            worker.wake()
        request.app.state.webhook_latency.observe(time.perf_counter() - started)
        return Response(content=EMPTY_TWIML, media_type="text/xml")

    @app.post("/sms/status", response_class=Response, tags=["sms"])
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

    @app.get("/metrics", response_class=PlainTextResponse, tags=["ops"])
    def metrics(request: Request) -> Response:
        return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", response_class=PlainTextResponse, tags=["ops"])
    def healthz() -> str:
        return "ok"

    @app.get("/readyz", tags=["ops"])
    def readyz(rt: RuntimeDep) -> JSONResponse:
        try:
            with rt.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means "not ready"
            log.warning("readiness check failed: %s", exc.__class__.__name__)
            return JSONResponse(
                {"status": "unavailable", "database": "unreachable"}, status_code=503
            )
        return JSONResponse({"status": "ok", "database": "ok"})

    install_api(app)
    install_console(app)  # after the API: wraps its error handlers for /console
    return app
