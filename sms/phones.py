"""Phone numbers: parsing any common format to E.164, and masking for logs."""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from urllib.parse import unquote

import phonenumbers


class InvalidPhone(ValueError):
    """The text is not a phone number we can send to."""


@functools.lru_cache(maxsize=65536)
def normalize_phone(raw: str, *, region: str = "CN") -> str:
    """Return `raw` as E.164 (`+8613800138000`), or raise `InvalidPhone`.

    Accepts `13800138000`, `+86 138 0013 8000`, `0580-2021234`, full-width
    digits, and `00` international prefixes. Memoised (a pure function of its
    arguments; the same residents and team members text again and again, and
    parsing costs a tenth of a millisecond); a refusal is not memoised.
    """
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if not text:
        raise InvalidPhone("empty phone number")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"not a phone number: {raw!r}") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"not a valid phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def same_number(a: str, b: str, *, region: str = "CN") -> bool:
    """Whether two spellings name one number: `+86 580 202 1234` is `05802021234`.

    A short code or service number (`12345`, a 106… number) is not a valid
    phone number to `phonenumbers`; such numbers are compared by their digits.
    """
    try:
        return normalize_phone(a, region=region) == normalize_phone(b, region=region)
    except InvalidPhone:
        return _digits(a) == _digits(b) != ""


def _digits(raw: str) -> str:
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", raw or ""))
    return digits[2:] if digits.startswith("00") else digits


@functools.lru_cache(maxsize=65536)
def mask_phone(phone: str) -> str:
    """Mask a phone for logs and for people who must not see it: `138****8000`.

    Works on E.164 and national forms; the country code is dropped so that a
    Chinese mobile reads the way residents write it.
    """
    phone = unicodedata.normalize("NFKC", phone or "")
    digits = re.sub(r"\D", "", phone)
    if phone.startswith("+86") and digits.isdigit() and len(digits) > 4:
        digits = digits[2:]  # China's +86: what follows is the national number
    elif phone.startswith("+"):
        try:
            number = phonenumbers.parse(phone, None)
            digits = str(number.national_number)
        except phonenumbers.NumberParseException:
            pass
    if len(digits) <= 4:
        return "*" * len(digits)
    if len(digits) < 8:
        return digits[:1] + "*" * (len(digits) - 3) + digits[-2:]
    return digits[:3] + "****" + digits[-4:]


# +86 13800138000, 13800138000, 0580-2021234, +1 415 555 0100, %2B86… (a
# form-encoded "+"): a run of 7+ digits with common separators. Dates and
# times are skipped first so "2024-05-06 12:00:00" stays readable. Boundaries
# are ASCII letters and digits only: Chinese text runs straight into a number
# ("电话13800138000"), and "#4821 13800138000" keeps its case code.
_PHONE_RE = re.compile(
    r"(?P<date>(?<!\d)(?:19|20)\d{2}-(?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12]\d|3[01])"
    r"(?:[ T](?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"(?!\d))"
    r"|(?<![0-9A-Za-z*#])(?P<phone>(?:\+|%2[Bb])?\d(?:[ \-]?\d){5,18})(?![0-9A-Za-z])"
)


def mask_phones_in_text(text: str) -> str:
    """Mask every phone-looking run of digits in free text (log lines).

    Runs of fewer than 7 digits (case codes like 4821, years, counts) and
    dates are left as they are. A number hidden by an encoding is found too:
    percent-encoding (once or twice: a URL in a query string), JSON `\\u`
    escapes, HTML entities, full-width digits. A text that holds one is
    masked in its decoded form (the log line then reads decoded).
    """
    masked = _mask_plain(text)
    decoded = _decoded(masked)
    remasked = _mask_plain(decoded)
    return remasked if remasked != decoded else masked


_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_FULL_WIDTH = str.maketrans("０１２３４５６７８９＋－　", "0123456789+- ")


def _decoded(text: str) -> str:
    """`text` with the encodings a phone may hide behind undone."""
    for _ in range(3):  # percent-encoding, possibly of percent-encoding
        if "%" not in text:
            break
        text = unquote(text)
    if "\\u" in text:
        text = _JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    if "&" in text:
        text = html.unescape(text)
    return text.translate(_FULL_WIDTH)


def _mask_plain(text: str) -> str:
    def _sub(match: re.Match[str]) -> str:
        run = match.group("phone")
        if run is None:
            return match.group(0)
        if sum(ch.isdigit() for ch in run) < 7:
            return run
        if run[:3] in ("%2B", "%2b"):
            run = "+" + run[3:]
        return mask_phone(run)

    return _PHONE_RE.sub(_sub, text)
