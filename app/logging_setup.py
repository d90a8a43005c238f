"""Logging with phone numbers masked, whatever a message or its arguments hold,
and secrets in query strings (`api_key=`, `token=`, …) blanked."""

from __future__ import annotations

import logging
import re

from sms.phones import mask_phones_in_text
from sms.twilio_gateway import quiet_twilio_logging

# A secret passed as a query or form parameter (Open311's `api_key=` is one).
_SECRET_PARAM = re.compile(
    r"(?i)\b((?:api_?key|access_?token|token|password|secret|csrf_token)(?:=|%3D))[^&\s\"']+"
)


def mask_secrets(text: str) -> str:
    return _SECRET_PARAM.sub(r"\1***", text)


class MaskPhonesFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(mask_phones_in_text(message))
        if masked != message or record.args:
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(mask_phones_in_text(record.exc_text))
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
