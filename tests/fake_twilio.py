"""A fake Twilio REST API over real HTTP on 127.0.0.1, for the real twilio client.

It speaks just enough of `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`:
HTTP basic auth, Twilio's error JSON (`code`, `message`, `more_info`,
`status`), a 201 message resource with an `SM…` sid. It records every message
it accepts, and can be scripted to fail:

    fake.fail_next(Status(500), Status(429))        # the next two creates
    fake.fail_next(TwilioError(21610), times=3)
    fake.fail_next(Problem(21211))                  # the same as an RFC 9457 document
    fake.fail_next(Hang())                          # accept, then answer only after
    ...                                             # fake.release_hung()
    fake.fail_ratio(0.3, seed=7)                    # 30 % of creates, reproducibly
    fake.reject_number("+8613700000009", 21610)     # always, for that number

`Hang` and `Drop` model the ambiguous cases: the message is accepted (recorded)
but the client never sees the answer. A hung request waits on an event the
test releases, never on a timer; `wait_hanging(n)` lets a test wait until the
server really holds n requests.

Startup binds the socket before the server thread starts, so the fake takes
connections as soon as `serve()` yields; shutdown releases hung requests, closes
open keep-alive connections, and joins every handler thread.
"""

from __future__ import annotations

import base64
import json
import random
import re
import secrets
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
# The test suite's token (tests/conftest.py AUTH_TOKEN): the same secret signs
# webhooks and authenticates REST calls, as with a real Twilio account.
AUTH_TOKEN = "test-auth-token-0123456789abcdef"

_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")

# Twilio's texts for the codes the fake produces.
ERROR_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "The 'To' number {to} is not a valid phone number.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    30003: "Unreachable destination handset",
}


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A running fake Twilio, stopped after the test (register this module as a
    plugin: `pytest_plugins = ["tests.fake_twilio"]` in tests/conftest.py)."""
    with FakeTwilio.serve() as fake:
        yield fake


# --- failure scripts --------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """Answer with this HTTP status and Twilio's error JSON (500 → 20500, 429 → 20429)."""

    status: int
    code: int | None = None
    html: bool = False  # a proxy's HTML error page instead of JSON


@dataclass(frozen=True)
class TwilioError:
    """A Twilio 4xx error with its code, e.g. 21211 invalid number, 21610 unsubscribed."""

    code: int
    status: int = 400


@dataclass(frozen=True)
class Problem:
    """An RFC 9457 problem document (`type`, `title`, `status`, `code`, `detail`)."""

    code: int
    status: int = 400


@dataclass(frozen=True)
class Hang:
    """Hold the request until `release_hung()`; `accept` records the message first."""

    accept: bool = True


@dataclass(frozen=True)
class Drop:
    """Close the connection without an answer; `accept` records the message first."""

    accept: bool = True


Failure = Status | TwilioError | Problem | Hang | Drop

DEFAULT_RATIO_FAILURES: tuple[Failure, ...] = (Status(500), Status(503), Status(429), Drop())


@dataclass(frozen=True)
class RecordedMessage:
    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None


@dataclass(frozen=True)
class RequestLog:
    """Every create request that passed auth, with what the fake did with it."""

    to: str | None
    outcome: str  # accepted, rejected, or the failure's class name


class FakeTwilio:
    def __init__(self, *, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._lock = threading.Condition()
        self._messages: list[RecordedMessage] = []
        self._requests: list[RequestLog] = []
        self._script: list[Failure] = []
        self._rejected: dict[str, int] = {}
        self._ratio: tuple[float, random.Random, Sequence[Failure]] | None = None
        self._release = threading.Event()
        self._hanging = 0
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---

    @classmethod
    @contextmanager
    def serve(cls, **kwargs: str) -> Iterator[FakeTwilio]:
        fake = cls(**kwargs)
        fake.start()
        try:
            yield fake
        finally:
            fake.stop()

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.fake = self  # type: ignore[attr-defined]
        self._server = server  # bound and listening from here on
        started = threading.Event()

        def run() -> None:
            started.set()
            server.serve_forever(poll_interval=0.05)

        self._thread = threading.Thread(target=run, name="fake-twilio", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("fake twilio server thread did not start")

    def stop(self) -> None:
        if self._server is None:
            return
        self.release_hung()
        self._server.shutdown()  # returns once serve_forever has stopped
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            # Idle keep-alive connections hold a handler thread in readline().
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()  # joins the handler threads
        assert self._thread is not None
        self._thread.join(10)
        self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- what happened ---

    @property
    def messages(self) -> list[RecordedMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def requests(self) -> list[RequestLog]:
        with self._lock:
            return list(self._requests)

    def sent_to(self, phone: str) -> list[RecordedMessage]:
        return [m for m in self.messages if m.to == phone]

    # --- scripting ---

    def fail_next(self, *failures: Failure, times: int = 1) -> None:
        """Queue failures for the next create requests, in order."""
        with self._lock:
            self._script.extend(list(failures) * times)

    def fail_ratio(
        self, ratio: float, *, seed: int, failures: Sequence[Failure] = DEFAULT_RATIO_FAILURES
    ) -> None:
        """Fail `ratio` of the creates not otherwise scripted, drawn from a seeded RNG."""
        with self._lock:
            self._ratio = (ratio, random.Random(seed), tuple(failures))

    def reject_number(self, phone: str, code: int = 21610) -> None:
        """Answer every create to `phone` with Twilio error `code` (400)."""
        with self._lock:
            self._rejected[phone] = code

    def clear_failures(self) -> None:
        with self._lock:
            self._script.clear()
            self._ratio = None
            self._rejected.clear()

    def release_hung(self) -> None:
        """Let every request held by a `Hang` answer (its client has given up by now)."""
        with self._lock:
            event, self._release = self._release, threading.Event()
        event.set()

    def wait_hanging(self, count: int = 1, timeout: float = 10.0) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: self._hanging >= count, timeout):
                raise AssertionError(f"{self._hanging} requests hanging, expected {count}")

    # --- used by the handler ---

    def _next_failure(self, to: str | None) -> Failure | None:
        with self._lock:
            if self._script:
                return self._script.pop(0)
            if to is not None and to in self._rejected:
                return TwilioError(self._rejected[to])
            if self._ratio is not None:
                ratio, rng, failures = self._ratio
                if rng.random() < ratio:
                    return rng.choice(failures)
        return None

    def _accept(self, *, to: str, from_: str, body: str, callback: str | None) -> RecordedMessage:
        message = RecordedMessage(
            sid="SM" + secrets.token_hex(16),
            account_sid=self.account_sid,
            to=to,
            from_=from_,
            body=body,
            status_callback=callback,
        )
        with self._lock:
            self._messages.append(message)
        return message

    def _log(self, to: str | None, outcome: str) -> None:
        with self._lock:
            self._requests.append(RequestLog(to=to, outcome=outcome))
            self._lock.notify_all()


def message_json(message: RecordedMessage) -> dict[str, object]:
    """The message resource as Twilio answers a create."""
    now = formatdate(usegmt=True)
    uri = f"/2010-04-01/Accounts/{message.account_sid}/Messages/{message.sid}"
    return {
        "account_sid": message.account_sid,
        "api_version": "2010-04-01",
        "body": message.body,
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": message.from_,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": message.sid,
        "status": "queued",
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": message.to,
        "uri": f"{uri}.json",
    }


def error_json(status: int, code: int, **fmt: str) -> dict[str, object]:
    text = ERROR_MESSAGES.get(code, HTTPStatus(status).phrase)
    return {
        "code": code,
        "message": text.format(**fmt) if fmt else text,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server_version = "FakeTwilio/1.0"

    @property
    def fake(self) -> FakeTwilio:
        return self.server.fake  # type: ignore[attr-defined, no-any-return]

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.fake._lock:
                self.fake._connections.discard(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        return None  # quiet; tests read what the fake recorded

    def end_headers(self) -> None:
        # A connection about to be closed says so, as real servers do: otherwise
        # a client may reuse it for its next request while the close is on its
        # way (RemoteDisconnected).
        if self.close_connection:
            self.send_header("Connection", "close")
        super().end_headers()

    def _send_json(self, status: int, payload: dict[str, object]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(data)

    def _send_error_page(self, status: int) -> None:
        data = f"<html><body><h1>{status} {HTTPStatus(status).phrase}</h1></body></html>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user, self.fake.account_sid) and secrets.compare_digest(
            password, self.fake.auth_token
        )

    def do_GET(self) -> None:
        self._read_body()
        self._send_json(405, error_json(405, 20004))

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_POST(self) -> None:
        fake = self.fake
        raw = self._read_body()
        match = _PATH.match(self.path.split("?", 1)[0])
        if not self._authorised():
            self._send_json(401, error_json(401, 20003))
            return
        if match is None or match["account"] != fake.account_sid:
            self._send_json(404, error_json(404, 20404))
            return
        form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
        to = form.get("To") or None
        failure = fake._next_failure(to)
        if failure is not None:
            self._fail(failure, form)
            return
        problem = _validate(form)
        if problem is not None:
            status, code = problem
            fake._log(to, "rejected")
            self._send_json(status, error_json(status, code, to=to or ""))
            return
        message = fake._accept(
            to=form["To"],
            from_=form["From"],
            body=form["Body"],
            callback=form.get("StatusCallback"),
        )
        fake._log(to, "accepted")
        self._send_json(201, message_json(message))

    def _fail(self, failure: Failure, form: dict[str, str]) -> None:
        fake = self.fake
        to = form.get("To")
        accepted: RecordedMessage | None = None
        if isinstance(failure, Hang | Drop) and failure.accept and _validate(form) is None:
            accepted = fake._accept(
                to=form["To"],
                from_=form["From"],
                body=form["Body"],
                callback=form.get("StatusCallback"),
            )
        fake._log(to, type(failure).__name__)
        if isinstance(failure, Status):
            if failure.html:
                self._send_error_page(failure.status)
            else:
                code = failure.code or (20429 if failure.status == 429 else 20500)
                self._send_json(failure.status, error_json(failure.status, code))
        elif isinstance(failure, TwilioError):
            self._send_json(failure.status, error_json(failure.status, failure.code, to=to or ""))
        elif isinstance(failure, Problem):
            body = error_json(failure.status, failure.code, to=to or "")
            self._send_json(
                failure.status,
                {
                    "type": f"https://www.twilio.com/docs/api/errors/{failure.code}",
                    "title": HTTPStatus(failure.status).phrase,
                    "status": failure.status,
                    "code": failure.code,
                    "detail": body["message"],
                },
            )
        elif isinstance(failure, Hang):
            with fake._lock:
                event = fake._release
                fake._hanging += 1
                fake._lock.notify_all()
            try:
                event.wait(60)  # bounded only so that a broken test cannot hang the run
            finally:
                with fake._lock:
                    fake._hanging -= 1
            self.close_connection = True
            try:
                if accepted is not None:
                    self._send_json(201, message_json(accepted))
                else:
                    self._send_json(500, error_json(500, 20500))
            except OSError:
                pass  # the client gave up long ago
        else:  # Drop
            self.close_connection = True
            with suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)


def _validate(form: dict[str, str]) -> tuple[int, int] | None:
    to, from_, body = form.get("To"), form.get("From"), form.get("Body")
    if not to:
        return 400, 21604
    if not from_:
        return 400, 21603
    if not body:
        return 400, 21602
    if not _E164.match(to):
        return 400, 21211
    if len(body) > 1600:
        return 400, 21617
    return None
