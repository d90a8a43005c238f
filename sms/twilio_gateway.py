"""The Twilio gateway: the twilio library's REST client against a configurable base URL."""

from __future__ import annotations

import logging

from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from sms.gateway import OutgoingSms, PermanentSendError, SendResult, TransientSendError

# Twilio error codes that a retry cannot fix (invalid or unreachable number,
# opted out, blocked). Anything else answered 4xx is permanent too, except 429.
PERMANENT_CODES = frozenset({21211, 21214, 21408, 21610, 21612, 21614, 30003, 30004, 30005, 30006})


def quiet_twilio_logging() -> None:
    """The twilio http client logs every request with its body (phones, texts) at INFO."""
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


class TwilioGateway:
    name = "twilio"

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
        quiet_twilio_logging()
        self._http = TwilioHttpClient(timeout=timeout)
        self._client = Client(account_sid, auth_token, http_client=self._http)
        # The library has no setting for a Twilio-compatible gateway's address;
        # the Api domain keeps it as a plain attribute used to build every URL.
        self._client.api.base_url = api_base.rstrip("/")
        self._from = from_number
        self._status_callback = status_callback

    def send(self, sms: OutgoingSms) -> SendResult:
        kwargs: dict[str, str] = {"to": sms.to, "from_": self._from, "body": sms.body}
        if self._status_callback:
            kwargs["status_callback"] = self._status_callback
        try:
            message = self._client.messages.create(**kwargs)  # type: ignore[arg-type]
        except TwilioRestException as exc:
            raise _translate(exc) from exc
        except Exception as exc:  # requests' timeouts and connection errors
            raise _translate_transport(exc) from exc
        return SendResult(provider_sid=str(message.sid), status=str(message.status or "queued"))

    def close(self) -> None:
        session = getattr(self._http, "session", None)
        if session is not None:
            session.close()


def _translate(exc: TwilioRestException) -> PermanentSendError | TransientSendError:
    code = str(exc.code) if exc.code is not None else None
    message = f"HTTP {exc.status}: {exc.msg}"
    if exc.status == 429 or exc.status >= 500:
        return TransientSendError(message, code=code or str(exc.status))
    if exc.code is not None and int(exc.code) in PERMANENT_CODES:
        return PermanentSendError(message, code=code)
    if 400 <= exc.status < 500:
        return PermanentSendError(message, code=code or str(exc.status))
    return TransientSendError(message, code=code)


def _translate_transport(exc: Exception) -> TransientSendError:
    import requests  # the twilio library's transport

    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.ConnectionError):
        # The request never reached the gateway (ConnectTimeout subclasses both).
        if not isinstance(exc, requests.exceptions.ReadTimeout):
            return TransientSendError(f"connection failed: {exc}", code="connect")
    if isinstance(exc, requests.exceptions.Timeout):
        return TransientSendError(f"timed out: {exc}", code="timeout", ambiguous=True)
    return TransientSendError(f"transport error: {exc}", code="transport", ambiguous=True)
