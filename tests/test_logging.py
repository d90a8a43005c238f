"""Phone numbers never reach the logs unmasked."""

from __future__ import annotations

import logging

from app.logging_setup import MaskPhonesFilter, configure_logging


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
