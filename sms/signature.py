"""Webhook signatures, checked with the twilio library's own RequestValidator."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator


def signed_url(public_url: str, path: str, query: str = "") -> str:
    """The URL the gateway signed: our public base URL, the path, and any query."""
    url = public_url.rstrip("/") + path
    return f"{url}?{query}" if query else url


def is_valid_signature(
    *, auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    if not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


def sign(*, auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Compute the `X-Twilio-Signature` a gateway would send (tests, local tools)."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))
