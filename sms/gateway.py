"""The gateway seam: what the outbox worker needs from an SMS provider.

Vendor exceptions are translated into `PermanentSendError` (never retry) or
`TransientSendError` (retry with backoff) at this boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutgoingSms:
    to: str
    body: str
    template: str
    params: dict[str, object]
    # Our outbox id; providers that support it use it for correlation/logging.
    reference: str


@dataclass(frozen=True)
class SendResult:
    provider_sid: str
    status: str


class SendError(Exception):
    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PermanentSendError(SendError):
    """The gateway refused the message for a reason a retry cannot fix."""


class TransientSendError(SendError):
    """The gateway could not take the message now; a retry may succeed.

    `ambiguous` is set when the request may have reached the gateway (a timeout
    after sending): a retry may then deliver the SMS twice.
    """

    def __init__(self, message: str, *, code: str | None = None, ambiguous: bool = False) -> None:
        super().__init__(message, code=code)
        self.ambiguous = ambiguous


# The longest body each provider takes in one message: Twilio refuses a
# longer one for good (error 21617). The console prints anything, but keeps
# to the same limit so that a demo shows what production would send.
BODY_LIMITS: dict[str, int] = {"twilio": 1600, "console": 1600}


class Gateway(Protocol):
    """An SMS provider. A gateway whose `send` may be called from several threads
    at once says so with a class attribute `concurrent = True` (optional: a
    gateway without it is called from one thread at a time, in order)."""

    name: str

    def send(self, sms: OutgoingSms) -> SendResult: ...

    def close(self) -> None: ...


def sends_concurrently(gateway: object) -> bool:
    """True when `gateway.send` may run on several threads at once."""
    return getattr(gateway, "concurrent", False) is True
