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


class Gateway(Protocol):
    name: str

    def send(self, sms: OutgoingSms) -> SendResult: ...

    def close(self) -> None: ...
