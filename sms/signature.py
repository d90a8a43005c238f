"""Webhook signatures, checked with the twilio library's own RequestValidator."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator


def signed_url(public_url: str, path: str, query: str = "") -> str:
    """The URL the gateway signed: our public base URL, the path, and any query."""
    url = public_url.rstrip("/") + path
    return f"{url}?{query}" if query else url


def _params(params: Mapping[str, str]) -> Mapping[str, str]:
    # A multi-dict (Starlette's FormData, Werkzeug's MultiDict) goes as it is:
    # the validator signs every value of a repeated field, dict() keeps one.
    if hasattr(params, "getall") or hasattr(params, "getlist"):
        return params
    return dict(params)


def is_valid_signature(
    *,
    auth_token: str,
    url: str,
    params: Mapping[str, str],
    signature: str | None,
    algorithm: str | None = None,
) -> bool:
    """True when `signature` (the `X-Twilio-Signature` header) signs `url` and `params`.

    A missing signature or an empty token is never valid: an empty HMAC key is
    one anybody can sign with. `algorithm` is `HMAC_SHA1` (the default, signed
    with the Auth Token) or `HMAC_SHA256`, as named by the
    `X-Twilio-Webhooks-Signature-Settings` header of Twilio's webhook rules.
    """
    if not signature or not auth_token:
        return False
    validator = RequestValidator(auth_token)
    if algorithm is None:  # the call every twilio 9.x understands
        return bool(validator.validate(url, _params(params), signature))
    return bool(validator.validate(url, _params(params), signature, algorithm))


def sign(
    *, auth_token: str, url: str, params: Mapping[str, str], algorithm: str | None = None
) -> str:
    """Compute the `X-Twilio-Signature` a gateway would send (tests, local tools)."""
    validator = RequestValidator(auth_token)
    if algorithm is None:
        return str(validator.compute_signature(url, _params(params)))
    return str(validator.compute_signature(url, _params(params), algorithm))
