"""Webhook signatures, checked with the twilio library's own RequestValidator."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from functools import lru_cache

from twilio.request_validator import RequestValidator


def signed_url(public_url: str, path: str, query: str = "") -> str:
    """The URL the gateway signed: our public base URL, the path, and any query."""
    url = public_url.rstrip("/") + path
    return f"{url}?{query}" if query else url


class _OneValueEach(dict[str, str]):
    """A plain form (one value per field) as the validator reads a multi-dict:
    it asks `getall` first, and for a plain dict fails over to `getlist` and
    then indexing, two caught AttributeErrors per field per signature."""

    def getall(self, name: str) -> list[str]:
        return [self[name]]


def _params(params: Mapping[str, str]) -> Mapping[str, str]:
    # A multi-dict (Starlette's FormData, Werkzeug's MultiDict) goes as it is:
    # the validator signs every value of a repeated field, dict() keeps one.
    if hasattr(params, "getall") or hasattr(params, "getlist"):
        return params
    return _OneValueEach(params)


@lru_cache(maxsize=8)
def _validator(auth_token: str) -> RequestValidator:
    return RequestValidator(auth_token)


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
    validator = _validator(auth_token)
    form = _params(params)
    # The common case first: signed for exactly our URL, one HMAC. The
    # validator's `validate` always computes two (the URL with its port and
    # without), and parses the URL, for the gateways that sign either way.
    if algorithm is None:
        computed = validator.compute_signature(url, form)
        if hmac.compare_digest(computed.encode(), signature.encode()):
            return True
        return bool(validator.validate(url, form, signature))
    try:
        computed = validator.compute_signature(url, form, algorithm)
    except ValueError:  # an algorithm this twilio does not know: validate says no
        return bool(validator.validate(url, form, signature, algorithm))
    if hmac.compare_digest(computed.encode(), signature.encode()):
        return True
    return bool(validator.validate(url, form, signature, algorithm))


def sign(
    *, auth_token: str, url: str, params: Mapping[str, str], algorithm: str | None = None
) -> str:
    """Compute the `X-Twilio-Signature` a gateway would send (tests, local tools)."""
    validator = RequestValidator(auth_token)
    if algorithm is None:
        return str(validator.compute_signature(url, _params(params)))
    return str(validator.compute_signature(url, _params(params), algorithm))
