"""CORS from an allowlist: `PATRON_CORS_ORIGINS` (comma-separated origins such as
`https://www.example.com`). None by default: no CORS header is ever sent, and browsers keep
pages of other origins from reading any answer.

For a listed origin: GET and POST, the request headers a client of Patron sends
(`ALLOWED_HEADERS`), no credentials (tokens travel in `Authorization`, never in cookies),
the preflight cached by the browser for `PATRON_CORS_MAX_AGE` seconds, and `X-Request-Id`
and `Retry-After` readable by the page. The same list allows WebSocket connections from
those origins (strawberry refuses cross-origin handshakes from any other).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from gateway.csrf import PREFLIGHT_HEADERS
from gateway.request_id import REQUEST_ID_HEADER

__all__ = ["ALLOWED_HEADERS", "EXPOSED_HEADERS", "cors_middleware", "normalized_origin"]

ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    REQUEST_ID_HEADER,
    *PREFLIGHT_HEADERS,
    "X-Patron-Document-Id",  # trusted documents: a persisted operation's id
)
EXPOSED_HEADERS = (REQUEST_ID_HEADER, "Retry-After")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalized_origin(value: str) -> str:
    """An origin as browsers send it (`scheme://host[:port]`, lower case, no default port);
    ValueError for anything else (a path, `*`, `null`, credentials)."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not an origin: {value!r}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an origin (scheme://host[:port]): {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"an origin has no path, query or credentials: {value!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


def cors_middleware(origins: Sequence[str], max_age: int) -> list[Middleware]:
    """The CORS middleware for these origins; none when the list is empty."""
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["GET", "POST"],
            allow_headers=list(ALLOWED_HEADERS),
            allow_credentials=False,
            expose_headers=list(EXPOSED_HEADERS),
            max_age=max_age,
        )
    ]
