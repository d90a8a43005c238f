"""Logging with phone numbers masked, whatever a message or its arguments hold."""

from __future__ import annotations

import logging

from sms.phones import mask_phones_in_text
from sms.twilio_gateway import quiet_twilio_logging


class MaskPhonesFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phones_in_text(message)
        if masked != message or record.args:
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_phones_in_text(record.exc_text)
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskPhonesFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_gridline", False):
            root.removeHandler(existing)
    handler._gridline = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's loggers propagate to the root handler; give them the filter too.
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        for h in logger.handlers:
            h.addFilter(MaskPhonesFilter())
    quiet_twilio_logging()
