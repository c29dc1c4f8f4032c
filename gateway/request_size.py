"""The size of a request to `/graphql`, bounded before strawberry reads it:

- a POST body over `PATRON_MAX_BODY_BYTES` (64 KiB) is 413 `PAYLOAD_TOO_LARGE`, refused on
  its `Content-Length` or, without one, as soon as the bytes read pass the limit (the rest
  is never read). A body within the limit is handed on to strawberry as it was read;
- a query string over `PATRON_MAX_QUERY_STRING_BYTES` (8 KiB: what proxies and CDNs pass)
  is 414 `URI_TOO_LONG`. A GET carries its document there; a longer one is a POST.

A client that leaves before its body is complete gets a 400 `BAD_REQUEST` it will not read
(not an exception in the log).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope

from gateway.refusals import graphql_refusal
from gateway.request_body import read_limited_body, replaying

__all__ = ["PAYLOAD_TOO_LARGE", "URI_TOO_LONG", "RequestSize"]

BAD_REQUEST = "BAD_REQUEST"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
URI_TOO_LONG = "URI_TOO_LONG"


@dataclass(frozen=True, slots=True)
class RequestSize:
    max_body_bytes: int
    max_query_string_bytes: int

    async def bound(self, scope: Scope, receive: Receive) -> tuple[Response | None, Receive]:
        """The refusal of a request too large, or None and the `receive` to go on with."""
        query_string: bytes = scope.get("query_string", b"")
        if len(query_string) > self.max_query_string_bytes:
            return self._uri_too_long(), receive
        if scope["method"] != "POST":
            return None, receive
        try:
            body = await read_limited_body(Request(scope, receive), self.max_body_bytes)
        except ClientDisconnect:
            left = "the client left before the body was complete"
            return graphql_refusal(400, BAD_REQUEST, left), receive
        if body is None:
            return self._too_large(), receive
        return None, replaying(body, receive)

    def _too_large(self) -> Response:
        limit = self.max_body_bytes
        return graphql_refusal(
            413, PAYLOAD_TOO_LARGE, f"the body exceeds {limit} bytes", maxBytes=limit
        )

    def _uri_too_long(self) -> Response:
        limit = self.max_query_string_bytes
        return graphql_refusal(
            414,
            URI_TOO_LONG,
            f"the query string exceeds {limit} bytes: send the operation by POST",
            maxBytes=limit,
        )
