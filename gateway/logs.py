"""The logging of `patron serve`: uvicorn's own configuration, every line with the request
id it belongs to, as text (`[<request id>]`, `[-]` outside a request) or one JSON object
per line (`gateway.json_logs`), by `PATRON_LOG_FORMAT` (json in prod, text in dev).

Patron's loggers (`patron.*`) print from INFO: one access line per HTTP request
(`patron.access`, written by `gateway.observed_requests`: uvicorn's own access log is off,
since its request line holds the query string, a GET query's variables among them), one
line per GraphQL error (`patron.graphql`, `gateway.error_logging`), the webhooks' outcomes.
Other loggers print from `level` (WARNING: httpx's line per upstream request, whose URL
holds customer ids, stays out)."""

from __future__ import annotations

import copy
from typing import Any, Literal

from uvicorn.config import LOGGING_CONFIG

__all__ = ["log_config"]

_FILTER = "gateway.request_id.RequestIdLogFilter"
_JSON = "gateway.json_logs.JsonFormatter"


def log_config(
    level: str = "WARNING", log_format: Literal["json", "text"] = "text"
) -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary for uvicorn's `log_config`."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"request_id": {"()": _FILTER}}
    formatters = config["formatters"]
    if log_format == "json":
        for name in ("default", "access", "patron"):
            formatters[name] = {"()": _JSON}
    else:
        formatters["default"]["fmt"] = "%(levelprefix)s [%(request_id)s] %(message)s"
        formatters["access"]["fmt"] = (
            '%(levelprefix)s [%(request_id)s] %(client_addr)s - "%(request_line)s" %(status_code)s'
        )
        formatters["patron"] = {
            "()": "uvicorn.logging.DefaultFormatter",
            "fmt": "%(levelprefix)s [%(request_id)s] %(name)s: %(message)s",
            "use_colors": None,
        }
    handlers = config["handlers"]
    handlers["patron"] = {
        "formatter": "patron",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    for handler in handlers.values():
        handler["filters"] = ["request_id"]
    config["loggers"]["patron"] = {"level": "INFO"}  # to the root's handler
    config["root"] = {"handlers": ["patron"], "level": level}
    return config
