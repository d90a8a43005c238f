"""Webhook signatures, as Twilio computes them."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from twilio.request_validator import RequestValidator

from sms.signature import is_valid_signature, sign, signed_url

TOKEN = "12345678901234567890123456789012"
URL = "https://gridline.example.org/sms/inbound"
PARAMS = {
    "MessageSid": "SM0123456789abcdef0123456789abcdef",
    "From": "+8613800138000",
    "To": "+8657000000000",
    "Body": "#4821 收到",
}


def test_sign_is_twilios_signature() -> None:
    assert sign(auth_token=TOKEN, url=URL, params=PARAMS) == RequestValidator(
        TOKEN
    ).compute_signature(URL, PARAMS)


def test_sign_follows_the_documented_scheme() -> None:
    # URL, then each parameter name and value sorted by name; HMAC-SHA1; base64.
    payload = URL + "".join(k + PARAMS[k] for k in sorted(PARAMS))
    digest = hmac.new(TOKEN.encode(), payload.encode(), hashlib.sha1).digest()
    assert sign(auth_token=TOKEN, url=URL, params=PARAMS) == base64.b64encode(digest).decode()


def test_signed_request_is_valid() -> None:
    signature = sign(auth_token=TOKEN, url=URL, params=PARAMS)
    assert is_valid_signature(auth_token=TOKEN, url=URL, params=PARAMS, signature=signature)


def test_signature_from_twilio_library_is_valid() -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, PARAMS)
    assert is_valid_signature(auth_token=TOKEN, url=URL, params=dict(PARAMS), signature=signature)


@pytest.mark.parametrize(
    ("field", "value"),
    [("Body", "#4821 办结"), ("From", "+8613900139000"), ("Body", "#4821 收到 "), ("Extra", "1")],
)
def test_tampered_param_is_invalid(field: str, value: str) -> None:
    signature = sign(auth_token=TOKEN, url=URL, params=PARAMS)
    tampered = {**PARAMS, field: value}
    assert not is_valid_signature(auth_token=TOKEN, url=URL, params=tampered, signature=signature)


def test_removed_param_is_invalid() -> None:
    signature = sign(auth_token=TOKEN, url=URL, params=PARAMS)
    fewer = {k: v for k, v in PARAMS.items() if k != "To"}
    assert not is_valid_signature(auth_token=TOKEN, url=URL, params=fewer, signature=signature)


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.org/sms/inbound",
        "http://gridline.example.org/sms/inbound",
        "https://gridline.example.org/sms/status",
        "https://gridline.example.org/sms/inbound?x=1",
    ],
)
def test_tampered_url_is_invalid(url: str) -> None:
    signature = sign(auth_token=TOKEN, url=URL, params=PARAMS)
    assert not is_valid_signature(auth_token=TOKEN, url=url, params=PARAMS, signature=signature)


def test_other_token_is_invalid() -> None:
    signature = sign(auth_token="another-token", url=URL, params=PARAMS)
    assert not is_valid_signature(auth_token=TOKEN, url=URL, params=PARAMS, signature=signature)


@pytest.mark.parametrize("signature", [None, "", "not-a-signature", "AAAA"])
def test_missing_or_garbage_signature_is_invalid(signature: str | None) -> None:
    assert not is_valid_signature(auth_token=TOKEN, url=URL, params=PARAMS, signature=signature)


def test_empty_token_never_validates() -> None:
    # Anybody can compute an HMAC with an empty key.
    forged = RequestValidator("").compute_signature(URL, PARAMS)
    assert not is_valid_signature(auth_token="", url=URL, params=PARAMS, signature=forged)


def test_explicit_default_port_is_accepted_like_twilio_does() -> None:
    signature = sign(
        auth_token=TOKEN, url="https://gridline.example.org:443/sms/inbound", params=PARAMS
    )
    assert is_valid_signature(auth_token=TOKEN, url=URL, params=PARAMS, signature=signature)


def test_hmac_sha256_of_webhook_rules() -> None:
    signature = sign(auth_token=TOKEN, url=URL, params=PARAMS, algorithm="HMAC_SHA256")
    assert signature == RequestValidator(TOKEN).compute_signature(URL, PARAMS, "HMAC_SHA256")
    assert is_valid_signature(
        auth_token=TOKEN, url=URL, params=PARAMS, signature=signature, algorithm="HMAC_SHA256"
    )
    # A SHA-256 signature checked as SHA-1 (or the other way round) fails.
    assert not is_valid_signature(auth_token=TOKEN, url=URL, params=PARAMS, signature=signature)
    sha1 = sign(auth_token=TOKEN, url=URL, params=PARAMS)
    assert not is_valid_signature(
        auth_token=TOKEN, url=URL, params=PARAMS, signature=sha1, algorithm="HMAC_SHA256"
    )


def test_unknown_algorithm_is_invalid() -> None:
    signature = sign(auth_token=TOKEN, url=URL, params=PARAMS)
    assert not is_valid_signature(
        auth_token=TOKEN, url=URL, params=PARAMS, signature=signature, algorithm="MD5"
    )


class _MultiDict(dict[str, str]):
    """A form with a repeated field, like Starlette's FormData."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__()
        self._pairs = pairs
        for key, value in pairs:
            self.setdefault(key, value)

    def getlist(self, key: str) -> list[str]:
        return [v for k, v in self._pairs if k == key]


def test_every_value_of_a_repeated_field_is_signed() -> None:
    form = _MultiDict([("Body", "hi"), ("MediaUrl", "a"), ("MediaUrl", "b")])
    signature = RequestValidator(TOKEN).compute_signature(URL, form)
    assert sign(auth_token=TOKEN, url=URL, params=form) == signature
    assert is_valid_signature(auth_token=TOKEN, url=URL, params=form, signature=signature)
    first_only = {"Body": "hi", "MediaUrl": "a"}
    assert not is_valid_signature(auth_token=TOKEN, url=URL, params=first_only, signature=signature)


@pytest.mark.parametrize(
    ("base", "path", "query", "url"),
    [
        ("https://gridline.example.org", "/sms/inbound", "", URL),
        ("https://gridline.example.org/", "/sms/inbound", "", URL),
        ("https://gridline.example.org", "/sms/inbound", "a=1&b=2", URL + "?a=1&b=2"),
        (
            "https://proxy.example.org/gridline",
            "/sms/status",
            "",
            "https://proxy.example.org/gridline/sms/status",
        ),
    ],
)
def test_signed_url(base: str, path: str, query: str, url: str) -> None:
    assert signed_url(base, path, query) == url
