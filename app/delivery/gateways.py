"""Build the configured SMS gateway."""

from __future__ import annotations

from collections.abc import Callable

from app.settings import Settings
from sms.console import ConsoleGateway
from sms.gateway import Gateway
from sms.twilio_gateway import TwilioGateway


def build_gateway(settings: Settings, *, echo: Callable[[str], None] | None = None) -> Gateway:
    if settings.sms_provider == "twilio":
        assert (
            settings.twilio_account_sid and settings.twilio_auth_token and settings.hotline_number
        )
        callback = f"{settings.public_url}/sms/status" if settings.public_url else None
        return TwilioGateway(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            from_number=settings.hotline_number,
            api_base=settings.twilio_api_base,
            timeout=settings.twilio_timeout_seconds,
            status_callback=callback,
        )
    return ConsoleGateway(echo=echo)
