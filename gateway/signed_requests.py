"""What every signed webhook endpoint does before it reads a message: refuse when no secret
is configured (503), refuse a body over the size limit without reading it all (413), and
refuse a missing or wrong signature of the raw body (401). Errors are JSON
`{"error": {"code", "message"}}` with a stable code."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.request_body import read_limited_body

MAX_BODY_BYTES = 1024 * 1024

Verifier = Callable[[str, bytes, str | None], bool]


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


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
    body = await read_limited_body(request, MAX_BODY_BYTES)
    if body is None:
        return error_response(413, "PAYLOAD_TOO_LARGE", f"the body exceeds {MAX_BODY_BYTES} bytes")
    if not verify(secret.get_secret_value(), body, request.headers.get(header)):
        return error_response(401, "INVALID_SIGNATURE", f"missing or wrong {header}")
    return body
