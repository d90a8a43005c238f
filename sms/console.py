"""The console gateway: prints each SMS and reports it sent. No credentials."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sms.gateway import OutgoingSms, SendResult
from sms.phones import mask_phone

log = logging.getLogger("gridline.sms.console")


class ConsoleGateway:
    name = "console"
    concurrent = False  # the echo prints in the order the SMS were sent

    def __init__(self, *, echo: Callable[[str], None] | None = None) -> None:
        self._echo = echo

    def send(self, sms: OutgoingSms) -> SendResult:
        log.info("SMS to %s: %s", mask_phone(sms.to), sms.body)
        if self._echo is not None:
            self._echo(f"[SMS → {sms.to}] {sms.body}")
        return SendResult(provider_sid=f"console-{sms.reference}", status="sent")

    def close(self) -> None:
        return None
