"""The durable baseline of bench_ingest: a minimal FastAPI app whose `POST /sms/inbound`
checks the Twilio signature as Gridline does, INSERTs one row and commits it
durably, then answers the same empty TwiML. Nothing else: no phone
normalisation, no size limits, no spool, no worker, no metrics.

Its database settings are Gridline's own: the engine comes from `app.db.make_engine`
(SQLite: journal_mode=WAL, synchronous=FULL, busy_timeout, BEGIN IMMEDIATE;
PostgreSQL: the server's synchronous_commit, on in bench/tests' clusters; the
same SQLAlchemy pool), and uvicorn runs with `gridline serve`'s settings.

    .venv/bin/python -m bench.durable_app --database-url sqlite:///x.db --port 8002 \
        --public-url http://127.0.0.1:8002 --auth-token TOKEN
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, Text, insert
from starlette.concurrency import run_in_threadpool
from twilio.twiml.messaging_response import MessagingResponse

from app.db import make_engine
from sms.signature import is_valid_signature, signed_url

EMPTY_TWIML = str(MessagingResponse())  # as app/intake/webhooks.py

metadata = MetaData()
inbound = Table(
    "bench_inbound",
    metadata,
    Column("message_sid", String(64), primary_key=True),
    Column("from_phone", String(32), nullable=False),
    Column("to_phone", String(32)),
    Column("body", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


def create_app(engine: Engine, *, public_url: str, auth_token: str) -> FastAPI:
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    def store(row: Mapping[str, object]) -> None:
        with engine.begin() as connection:  # one INSERT, committed when this returns
            connection.execute(insert(inbound), row)

    @app.post("/sms/inbound", response_class=Response)
    async def sms_inbound(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        url = signed_url(public_url, request.scope["path"])
        if not is_valid_signature(
            auth_token=auth_token,
            url=url,
            params=form,
            signature=request.headers.get("x-twilio-signature"),
        ):
            return PlainTextResponse("invalid signature", status_code=403)
        row = {
            "message_sid": form["MessageSid"],
            "from_phone": form["From"],
            "to_phone": form.get("To"),
            "body": form.get("Body", ""),
            "received_at": datetime.now(UTC),
        }
        await run_in_threadpool(store, row)
        return Response(content=EMPTY_TWIML, media_type="text/xml")

    @app.get("/readyz", response_class=PlainTextResponse)
    def readyz() -> str:
        return "ok"

    return app


def main() -> None:
    import logging

    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--public-url", required=True)
    parser.add_argument("--auth-token", required=True)
    args = parser.parse_args()
    kwargs: dict[str, object] = {}
    if args.database_url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 5}  # as app/runtime.py (the default)
    engine = make_engine(args.database_url, **kwargs)
    metadata.create_all(engine)
    # `gridline serve`'s logging and uvicorn settings (app/cli/main.py).
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(engine, public_url=args.public_url, auth_token=args.auth_token)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, proxy_headers=True)


if __name__ == "__main__":
    main()
