"""`serve --log-format json`: one JSON object per log line, for every logger of the process
(uvicorn's included), built by the standard library's logging machinery.

Every line has the same keys: `time`, `level`, `logger`, `message`, `request_id`, `route`,
`status`, `duration_ms` (null where they do not apply), and `exception` when there is one. A
line logged while a request is handled carries its request id and route template. Tokens in
query strings are redacted by a filter on the handler, so no logger can bypass it; event data
is never put in a message by the HTTP layer (routes are templates, never raw paths)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

LOG_FORMATS = ("text", "json")
ACCESS_LOGGER = "session_events.access"


@dataclass(frozen=True)
class RequestInProgress:
    """The request a log line is about. The route is read from the ASGI scope when the line is
    written: the router sets it after the request began."""

    request_id: str
    scope: Mapping[str, Any]

    @property
    def route(self) -> str | None:
        template = self.scope.get("path_template")
        return str(template) if template else None


CURRENT_REQUEST: ContextVar[RequestInProgress | None] = ContextVar("session_events_request", default=None)


class JsonLines(logging.Formatter):
    """A record as one line of JSON. Fields given with `extra=` (`route`, `status`,
    `duration_ms`, `request_id`) win over the request in progress."""

    def format(self, record: logging.LogRecord) -> str:
        request = CURRENT_REQUEST.get()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or (request.request_id if request else None),
            "route": getattr(record, "route", None) or (request.route if request else None),
            "status": getattr(record, "status", None),
            "duration_ms": getattr(record, "duration_ms", None),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def json_log_config(level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the serving processes (uvicorn's `log_config`): every
    record goes to standard error through one handler, as JSON, tokens redacted."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact_tokens": {"()": "entrypoints.http.log_redaction.RedactTokens"}},
        "formatters": {"json": {"()": "entrypoints.log_format.JsonLines"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "filters": ["redact_tokens"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            name: {"handlers": [], "level": level, "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "litestar", ACCESS_LOGGER)
        },
    }
