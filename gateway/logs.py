"""The logging of `patron serve`: uvicorn's own configuration, every line with the request
id it belongs to (`[<request id>]`, `[-]` outside a request), and Patron's and strawberry's
loggers (errors with their tracebacks) printed too instead of falling to Python's bare
last-resort handler. Plain text for now; structured logs replace the formatters, and read
the same `request_id` attribute (`gateway.request_id.RequestIdLogFilter`)."""

from __future__ import annotations

import copy
from typing import Any

from uvicorn.config import LOGGING_CONFIG

__all__ = ["log_config"]

_FILTER = "gateway.request_id.RequestIdLogFilter"


def log_config(level: str = "WARNING") -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary for uvicorn's `log_config`. Other loggers
    than uvicorn's print from `level` (WARNING: httpx's line per upstream request stays
    out)."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"request_id": {"()": _FILTER}}
    formatters = config["formatters"]
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
    config["root"] = {"handlers": ["patron"], "level": level}
    return config
