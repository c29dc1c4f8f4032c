"""Reading a request's body within a size limit, shared by `/graphql` and the webhooks: a
declared `Content-Length` over the limit is refused before reading anything, and a body
sent without one (chunked) is read no further than the limit."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Message, Receive

__all__ = ["read_limited_body", "replaying"]


async def read_limited_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None when it is larger than `limit` (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, whole, then defers to the
    connection's (a disconnect)."""
    sent = False

    async def receiving() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receiving
