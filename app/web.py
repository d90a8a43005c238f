"""The HTTP application: SMS webhooks, health, metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from app.api.mount import install_api
from app.console.mount import install_console
from app.db import database_unavailable
from app.delivery.gateways import build_gateway
from app.deps import RuntimeDep
from app.intake.spool import Spool
from app.intake.webhooks import GridlineApp, install_sms_webhooks
from app.metrics import build_registry
from app.runtime import Runtime, settle_heap
from app.settings import Settings
from app.worker.loop import WorkerThread
from app.worker.process import WorkerProcess
from sms.gateway import Gateway

log = logging.getLogger("gridline.web")

NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


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
        app.state.runtime = rt
        app.state.worker = worker
        app.state.spool = spool
        app.state.metrics, app.state.webhook_latency = build_registry(rt, spool)
        # Messages spooled while the database was down, before a restart.
        try:
            await run_in_threadpool(spool.replay, rt.sessions)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            log.warning("spool not replayed at start-up: database unavailable")
        if worker is not None:
            worker.start()
        if freeze_heap:
            settle_heap()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            if gateway is None:
                gw.close()
            if runtime is None:
                rt.close()

    app = GridlineApp(
        title="Gridline",
        version="0.1.0",
        description="SMS hotline routing residents' requests to their grid's service team.",
        lifespan=lifespan,
        # Gridline's metrics are Prometheus (/metrics). FastAPI's OpenTelemetry
        # hook would otherwise look up the (unconfigured) global providers on
        # every request: a tenth of a webhook's CPU under load.
        telemetry=NO_TELEMETRY,
    )

    install_sms_webhooks(app)

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
