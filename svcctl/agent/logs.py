"""The agent's log: one line per event, structured: ``key=value`` pairs (logfmt) or one JSON
object per line (``--log-format json``), on standard error (journald keeps it)."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

FORMATS = ("text", "json")


def _logfmt(value: Any) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\\') and "\n" not in text:
        return text
    return json.dumps(text)


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool):
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if self.as_json:
            return json.dumps(fields)
        return " ".join(f"{k}={_logfmt(v)}" for k, v in fields.items())


def setup(log_format: str) -> logging.Logger:
    """The agent's logger, writing to standard error in ``log_format`` (text or json)."""
    logger = logging.getLogger("svcctl.agent")
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(log_format == "json"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger
