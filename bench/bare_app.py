"""The baseline of bench_ingest: a bare FastAPI app that answers `POST /sms/inbound`
with the same empty TwiML as Gridline, and does nothing else (no signature
check, no database). Served by uvicorn with `gridline serve`'s settings.

    .venv/bin/python -m bench.bare_app --port 8001
"""

from __future__ import annotations

import argparse

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from twilio.twiml.messaging_response import MessagingResponse

EMPTY_TWIML = str(MessagingResponse())  # as app/intake/webhooks.py


def create_app() -> FastAPI:
    # FastAPI's OpenTelemetry hook off, as in app/web.py (same app settings).
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    @app.post("/sms/inbound", response_class=Response)
    async def sms_inbound(request: Request) -> Response:
        await request.body()  # read the form, as any webhook must
        return Response(content=EMPTY_TWIML, media_type="text/xml")

    @app.get("/readyz", response_class=PlainTextResponse)
    def readyz() -> str:
        return "ok"

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    # The settings of `gridline serve` (app/cli/main.py); its access log goes through
    # the root logger there, configured at INFO: do the same here.
    import logging

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(create_app(), host=args.host, port=args.port, log_config=None, proxy_headers=True)


if __name__ == "__main__":
    main()
