"""The Twilio gateway: the twilio library's REST client against a configurable base URL.

Every failure leaves here as our own error: `PermanentSendError` when a retry
cannot help (the number is invalid, unsubscribed, blocked),
`TransientSendError` otherwise. A transient error is `ambiguous` when the
request may have reached the gateway, so that a retry may send the SMS twice.
"""

from __future__ import annotations

import logging
import queue
import threading

import requests
from twilio.base import exceptions as twilio_exceptions
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from sms.gateway import OutgoingSms, PermanentSendError, SendResult, TransientSendError
from sms.phones import mask_phones_in_text

# Twilio error codes that a retry cannot fix (invalid or unreachable number,
# opted out, blocked). Anything else answered 4xx is permanent too, except the
# statuses in `_RETRYABLE_4XX`.
PERMANENT_CODES = frozenset({21211, 21214, 21408, 21610, 21612, 21614, 30003, 30004, 30005, 30006})

# 401 (bad credentials) and 404 (wrong base URL or account SID) say that *we*
# are misconfigured, not that the message is bad: failing every queued SMS for
# good while an operator fixes a token would lose them, so they are retried
# (with backoff, up to the outbox's attempt limit). 408/429 are "try later".
_RETRYABLE_4XX = frozenset({401, 404, 408, 429})

# A proxy or load balancer answering 502/504 may have forwarded the request
# before the upstream failed or stalled: the SMS may have been accepted.
_AMBIGUOUS_5XX = frozenset({502, 504})

# Added in twilio 9.x for RFC 9457 problem responses; it does not subclass
# TwilioRestException, so it would otherwise look like a transport failure.
_TwilioServiceException: type[Exception] | None = getattr(
    twilio_exceptions, "TwilioServiceException", None
)

_HTTP_LOGGER = "twilio.http_client"


class _MaskPhones(logging.Filter):
    """Masks phone numbers in the twilio library's own log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phones_in_text(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True


def quiet_twilio_logging() -> None:
    """Keep the twilio http client's request/response log lines out of INFO.

    It logs every request's URL and headers and every response's headers at
    INFO. Nothing there should carry a phone number today, but one version of
    the library logging a body or a query string is all it takes: the lines are
    raised to WARNING, and whatever does get through is masked.
    """
    logger = logging.getLogger(_HTTP_LOGGER)
    logger.setLevel(logging.WARNING)
    if not any(isinstance(f, _MaskPhones) for f in logger.filters):
        logger.addFilter(_MaskPhones())


class TwilioGateway:
    """Safe to call from several threads at once (`concurrent`): each call takes
    a client of its own from a free list. One twilio `Client` must not be
    shared: `TwilioHttpClient.request` stores each response on the client and
    then returns that attribute, so a send on another thread could hand back
    the wrong message's SID. Clients (and their keep-alive connections) outlive
    the threads that use them; there are as many as sends ever overlapped."""

    name = "twilio"
    concurrent = True

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        api_base: str = "https://api.twilio.com",
        timeout: float = 10.0,
        status_callback: str | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        quiet_twilio_logging()
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._api_base = api_base.rstrip("/")
        self._timeout = timeout
        self._from = from_number
        self._status_callback = status_callback
        self._idle: queue.SimpleQueue[Client] = queue.SimpleQueue()
        self._made: list[TwilioHttpClient] = []
        self._made_lock = threading.Lock()
        self._idle.put(self._new_client())

    def _new_client(self) -> Client:
        # requests' default adapter never retries a POST: a create is sent once
        # per call, so one outbox attempt is one request.
        http = TwilioHttpClient(timeout=self._timeout)
        client = Client(self._account_sid, self._auth_token, http_client=http)
        # The client reads TWILIO_EDGE / TWILIO_REGION from os.environ and then
        # rewrites every URL's host (api.<edge>.<region>.twilio.com), which would
        # mangle a Twilio-compatible gateway's address. Settings own configuration.
        client.edge = None
        client.region = None
        # The library has no setting for a Twilio-compatible gateway's address;
        # the Api domain keeps it as a plain attribute used to build every URL
        # (tests/sms/test_twilio_gateway.py proves requests go there).
        client.api.base_url = self._api_base
        client.messages  # noqa: B018 - built here, not lazily by two threads at once
        with self._made_lock:
            self._made.append(http)
        return client

    def send(self, sms: OutgoingSms) -> SendResult:
        try:
            client = self._idle.get_nowait()
        except queue.Empty:
            client = self._new_client()
        try:
            return self._send(client, sms)
        finally:
            self._idle.put(client)

    def _send(self, client: Client, sms: OutgoingSms) -> SendResult:
        kwargs: dict[str, str] = {"to": sms.to, "from_": self._from, "body": sms.body}
        if self._status_callback:
            kwargs["status_callback"] = self._status_callback
        try:
            message = client.messages.create(**kwargs)
        except TwilioRestException as exc:
            raise _translate_status(exc.status, exc.code, exc.msg) from exc
        except requests.exceptions.RequestException as exc:
            raise _translate_transport(exc) from exc
        except Exception as exc:
            if _TwilioServiceException is not None and isinstance(exc, _TwilioServiceException):
                detail = getattr(exc, "detail", None) or getattr(exc, "title", "")
                raise _translate_status(
                    getattr(exc, "status", 500), getattr(exc, "code", None), str(detail)
                ) from exc
            if isinstance(exc, TwilioException | ValueError):
                # A 2xx answer we could not read (not JSON): the gateway took the
                # request, and may have accepted the message.
                raise TransientSendError(
                    f"unreadable answer: {_clean(str(exc))}", code="bad_answer", ambiguous=True
                ) from exc
            raise
        sid = message.sid
        if not sid:
            raise TransientSendError("answer without a message sid", code="no_sid", ambiguous=True)
        return SendResult(provider_sid=str(sid), status=str(message.status or "queued"))

    def close(self) -> None:
        with self._made_lock:
            made = list(self._made)
        for http in made:
            session = getattr(http, "session", None)
            if session is not None:
                session.close()


def _clean(text: str) -> str:
    # Twilio's messages name the number ("The 'To' number +86… is not a valid
    # phone number"); they end up in logs and in the outbox row's reason.
    return mask_phones_in_text(text)


def _translate_status(
    status: int, code: object, msg: str
) -> PermanentSendError | TransientSendError:
    code_text = str(code) if code is not None else None
    try:
        code_number: int | None = int(code) if code is not None else None  # type: ignore[call-overload]
    except (TypeError, ValueError):
        code_number = None
    message = f"HTTP {status}: {_clean(msg)}"
    if status >= 500:
        return TransientSendError(
            message, code=code_text or str(status), ambiguous=status in _AMBIGUOUS_5XX
        )
    if code_number is not None and code_number in PERMANENT_CODES:
        return PermanentSendError(message, code=code_text)
    if status in _RETRYABLE_4XX:
        return TransientSendError(message, code=code_text or str(status))
    if 400 <= status < 500:
        return PermanentSendError(message, code=code_text or str(status))
    # 1xx/3xx (redirects are not followed): a misconfigured base URL, say.
    return TransientSendError(message, code=code_text or str(status))


def _never_sent(exc: requests.exceptions.RequestException) -> bool:
    """True when the request cannot have reached the gateway."""
    if isinstance(
        exc,
        requests.exceptions.ConnectTimeout
        | requests.exceptions.SSLError
        | requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema,
    ):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and exc.args:
        # requests wraps urllib3's MaxRetryError; its reason says which step failed.
        # Anything else (ProtocolError "Connection aborted", a reset) happened
        # after the request was written.
        inner = exc.args[0]
        if isinstance(inner, MaxRetryError):
            return isinstance(inner.reason, NewConnectionError | ConnectTimeoutError)
    return False


def _translate_transport(exc: requests.exceptions.RequestException) -> TransientSendError:
    if _never_sent(exc):
        return TransientSendError(f"connection failed: {_clean(str(exc))}", code="connect")
    if isinstance(exc, requests.exceptions.Timeout):
        return TransientSendError(f"timed out: {_clean(str(exc))}", code="timeout", ambiguous=True)
    return TransientSendError(
        f"transport error: {_clean(str(exc))}", code="transport", ambiguous=True
    )
