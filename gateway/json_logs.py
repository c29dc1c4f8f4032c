"""Structured logs: one JSON object per line (`PATRON_LOG_FORMAT=json`, the default in prod).

Every line has `time` (UTC, ISO 8601, milliseconds), `level`, `logger`, `message` and
`request_id` (`-` outside a request; `gateway.request_id`); `trace_id` and `span_id` when
the line was written inside a traced span; `exception` (the formatted traceback) when it
carries one. An access line adds its fields (`gateway.observed_requests`: method, path,
status, duration_ms, operation, operation_type, outcome, role): a record's `fields`
attribute (`extra={"fields": {...}}`) is merged in, without replacing those above.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry import trace

__all__ = ["JsonFormatter"]

_BASE = frozenset({"time", "level", "logger", "message", "request_id", "trace_id", "span_id"})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or "-",
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"] = format(span.trace_id, "032x")
            line["span_id"] = format(span.span_id, "016x")
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                if key not in _BASE:
                    line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()
