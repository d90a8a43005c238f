"""Phone numbers never reach the logs unmasked."""

from __future__ import annotations

import logging

import pytest

from app.logging_setup import MaskPhonesFilter, configure_logging
from tests.helpers import unmasked_mobile


def _format(record: logging.LogRecord) -> str:
    MaskPhonesFilter().filter(record)
    return logging.Formatter("%(message)s").format(record)


def test_phones_in_messages_and_arguments_are_masked():
    record = logging.LogRecord(
        "t",
        logging.INFO,
        __file__,
        1,
        "from %s to %s about #%s",
        ("+8613800138000", "13912345678", "4821"),
        None,
    )
    line = _format(record)
    assert "13800138000" not in line and "13912345678" not in line
    assert "138****8000" in line and "139****5678" in line
    assert "#4821" in line  # case codes are not phones


def test_phones_in_tracebacks_are_masked():
    try:
        raise ValueError("bad number +8613800138000")
    except ValueError:
        import sys

        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = _format(record)
    assert "13800138000" not in line and "138****8000" in line


def test_configured_root_logger_masks(capfd):
    configure_logging("INFO")
    logging.getLogger("gridline.test").info("SMS to +8613800138000")
    err = capfd.readouterr().err
    assert "138****8000" in err and "13800138000" not in err
    assert logging.getLogger("twilio.http_client").getEffectiveLevel() >= logging.WARNING


PHONE = "13758000013"
# How a mobile reaches a log line: typed, in a URL (once or twice encoded:
# a `next=` URL in a query string), in JSON, in HTML, full width.
ENCODED = [
    "13758000013",
    "+8613758000013",
    "008613758000013",
    "137 5800 0013",
    "137-5800-0013",
    "+86 137 5800 0013",
    "１３７５８００００１３",
    "%2B8613758000013",
    "%252B8613758000013",
    "q=%E7%8E%8B13758000013",
    "next=%2Fconsole%3Fq%3D%25E7%258E%258B13758000013",
    "\\u0031\\u0033\\u0037\\u0035\\u0038\\u0030\\u0030\\u0030\\u0030\\u0031\\u0033",
    "&#49;&#51;&#55;58000013",
    "&#x31;3758000013",
]


def _unmasked_mobile(line: str) -> bool:
    return unmasked_mobile(line, PHONE)


@pytest.mark.parametrize("shown", ENCODED)
def test_a_mobile_in_any_encoding_is_masked(shown: str) -> None:
    assert _unmasked_mobile(f"GET /console?{shown} 200")  # the scan finds it unmasked
    record = logging.LogRecord(
        "t", logging.INFO, __file__, 1, "GET /console?%s 200", (shown,), None
    )
    line = _format(record)
    assert not _unmasked_mobile(line), line
    assert "****" in line


def test_lines_without_a_phone_keep_their_encoding() -> None:
    record = logging.LogRecord(
        "t", logging.INFO, __file__, 1, "GET /console?q=%E8%B7%AF%E7%81%AF #4821 200", None, None
    )
    assert _format(record) == "GET /console?q=%E8%B7%AF%E7%81%AF #4821 200"


@pytest.mark.parametrize(
    "query",
    [
        "api_key=gl_live_abcdef123456",
        "API_KEY=gl_live_abcdef123456",
        "api_key%3Dgl_live_abcdef123456",
    ],
)
def test_secrets_in_query_strings_are_blanked(query: str) -> None:
    record = logging.LogRecord(
        "t",
        logging.INFO,
        __file__,
        1,
        "GET /api/v1/open311/requests.json?%s&x=1 200",
        (query,),
        None,
    )
    line = _format(record)
    assert "abcdef123456" not in line and "***" in line and "x=1" in line
