"""Structured JSON logs, one object per line, with the request id of the call being served.

Secrets never reach a log: tokens, passwords and values are not passed to the logger anywhere,
and exception messages of unknown errors are logged only with their traceback server-side.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import secrets
import sys
import time
from typing import Literal

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Header/metadata name, lower case as gRPC requires; HTTP headers are case-insensitive.
REQUEST_ID_HEADER = "x-request-id"
# A caller's id is kept only if it looks like an id: it lands in every log line of the call.
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def accept_request_id(incoming: str | None) -> str:
    """The caller's request id when it is a plausible one, else a fresh random one."""
    if incoming is not None and _ACCEPTED_ID.fullmatch(incoming):
        return incoming
    return secrets.token_hex(8)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        for name in ("method", "code", "reason", "duration_ms"):
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


FORMAT_ENV = "LEOFLOW_LOG_FORMAT"
LEVEL_ENV = "LEOFLOW_LOG_LEVEL"
_FORMATS = ("auto", "json", "text")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def format_from_env() -> Literal["auto", "json", "text"]:
    """LEOFLOW_LOG_FORMAT: `json`, `text` or `auto` (the default)."""
    value = os.environ.get(FORMAT_ENV, "").strip().lower() or "auto"
    if value == "json":
        return "json"
    if value == "text":
        return "text"
    if value == "auto":
        return "auto"
    raise ValueError(f"{FORMAT_ENV}={value!r}: want one of {', '.join(_FORMATS)}")


def level_from_env(default: str = "INFO") -> str:
    """LEOFLOW_LOG_LEVEL (DEBUG, INFO, WARNING, ERROR, CRITICAL), else `default`."""
    return check_level(os.environ.get(LEVEL_ENV, "").strip() or default, LEVEL_ENV)


def check_level(value: str, source: str) -> str:
    level = value.upper()
    if level not in _LEVELS:
        raise ValueError(f"{source}={value!r}: want one of {', '.join(_LEVELS)}")
    return level


def wants_json(setting: Literal["auto", "json", "text"]) -> bool:
    """`auto`: text for a person at a terminal, JSON for containers and log shippers."""
    if setting == "auto":
        return not sys.stderr.isatty()
    return setting == "json"


def configure(level: str, json_format: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_format:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
