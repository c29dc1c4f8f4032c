"""What every signed webhook endpoint does before it reads a message: refuse when no secret
is configured (503), refuse a body over the size limit without reading it all (413), and
refuse a missing or wrong signature of the raw body (401). Errors are JSON
`{"error": {"code", "message"}}` with a stable code."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse

MAX_BODY_BYTES = 1024 * 1024

Verifier = Callable[[str, bytes, str | None], bool]


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def read_limited_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The raw body, or None when it is larger than `limit` (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def verified_body(
    request: Request,
    secret: SecretStr | None,
    *,
    setting: str,
    header: str,
    verify: Verifier,
) -> bytes | JSONResponse:
    """The raw body when its signature verifies; otherwise the refusal to send."""
    if secret is None or not secret.get_secret_value():
        return error_response(503, "WEBHOOK_NOT_CONFIGURED", f"{setting} is not set")
    body = await read_limited_body(request)
    if body is None:
        return error_response(413, "PAYLOAD_TOO_LARGE", f"the body exceeds {MAX_BODY_BYTES} bytes")
    if not verify(secret.get_secret_value(), body, request.headers.get(header)):
        return error_response(401, "INVALID_SIGNATURE", f"missing or wrong {header}")
    return body
