"""A request refused before GraphQL runs: an HTTP status and a GraphQL error body,
`{"errors": [{"message", "extensions": {"code", ...}}]}`, with a stable code."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse

__all__ = ["graphql_refusal"]


def graphql_refusal(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extensions: object,
) -> JSONResponse:
    error = {"message": message, "extensions": {"code": code, **extensions}}
    return JSONResponse({"errors": [error]}, status_code=status, headers=headers)
