"""CSRF prevention on `/graphql`: a request a browser would send cross-site without asking
first (a CORS preflight) is refused before anything runs.

A page on another site can make the browser send a GET, or a POST whose Content-Type is
one of the three "simple" ones (`application/x-www-form-urlencoded`, `multipart/form-data`,
`text/plain`), without a preflight: the browser then only hides the answer, after the
server has acted. Any other Content-Type, or a header outside the CORS safelist, makes the
browser ask first (`OPTIONS`), and the CORS allowlist (`gateway.cors`) answers that.

So a request executes only when it could not have been sent that way: it has a
Content-Type that is not a simple one (a JSON POST always has), or a non-empty
`X-Patron-CSRF` header (any value, e.g. `1`; `Apollo-Require-Preflight` and
`X-Apollo-Operation-Name`, which Apollo clients send for Apollo Server's identical rule, are
accepted too). A GET query therefore carries `X-Patron-CSRF: 1`. Refused: 400
`CSRF_PREFLIGHT_REQUIRED`, the same rule as Apollo Server's CSRF prevention.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.graphql_http import Refusal, media_type_essence

__all__ = [
    "CSRF_PREFLIGHT_REQUIRED",
    "PREFLIGHT_HEADERS",
    "SIMPLE_CONTENT_TYPES",
    "is_preflighted",
    "require_preflight",
]

CSRF_PREFLIGHT_REQUIRED = "CSRF_PREFLIGHT_REQUIRED"
PREFLIGHT_HEADERS = ("X-Patron-CSRF", "Apollo-Require-Preflight", "X-Apollo-Operation-Name")
SIMPLE_CONTENT_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)


def is_preflighted(headers: Mapping[str, str]) -> bool:
    """Whether a browser would have sent a CORS preflight before this request. `headers`
    is looked up by lower-case name (Starlette's headers are case-insensitive)."""
    content_type = headers.get("content-type")
    if content_type is not None and media_type_essence(content_type)[0] not in (
        SIMPLE_CONTENT_TYPES
    ):
        return True
    return any(headers.get(name.lower(), "").strip() for name in PREFLIGHT_HEADERS)


def require_preflight(headers: Mapping[str, str]) -> None:
    if not is_preflighted(headers):
        raise Refusal(
            400,
            CSRF_PREFLIGHT_REQUIRED,
            "this request could have been sent by another site (CSRF): send a POST with "
            "Content-Type: application/json, or the header X-Patron-CSRF: 1",
        )
