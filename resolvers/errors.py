"""How failures reach clients.

- A business rule's refusal (`DomainError`) is data: a `UserError` in the mutation payload.
- A failing upstream (`UpstreamError`) costs only its own field: a GraphQL error whose
  `extensions` carry `code` and `upstream`, the rest of the answer intact.
- A query-level refusal (not found, not allowed, not authenticated) is a GraphQL error with
  a stable `extensions.code`.
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from loyalty.errors import DomainError, UpstreamError, UserErrorCode

UserErrorCodeType = strawberry.enum(UserErrorCode, name="UserErrorCode")


@strawberry.type(description="A business rule said no. The payload's other fields are then null.")
class UserError:
    code: UserErrorCodeType  # type: ignore[valid-type]
    field: list[str] | None
    message: str

    @classmethod
    def of(cls, error: DomainError) -> UserError:
        return cls(
            code=error.code, field=list(error.field) if error.field else None, message=error.message
        )


def upstream_error(error: UpstreamError, info: Info[Any, Any]) -> GraphQLError:
    """The GraphQL error for a field whose upstream failed."""
    return GraphQLError(
        f"{error.upstream} is unavailable: {error.message}",
        extensions={"code": error.code, "upstream": error.upstream},
    )


def soft_upstream_error(error: UpstreamError, info: Info[Any, Any]) -> None:
    """Report an upstream failure for a non-null field that answers with a fallback value
    (an empty list): the error goes to the response's `errors` with the field's path."""
    located = GraphQLError(
        f"{error.upstream} is unavailable: {error.message}",
        path=info.path.as_list(),
        extensions={"code": error.code, "upstream": error.upstream},
    )
    info.context.soft_errors.append(located)


def refusal(code: str, message: str) -> GraphQLError:
    """A query-level refusal with a stable `extensions.code`."""
    return GraphQLError(message, extensions={"code": code})


def not_found(what: str) -> GraphQLError:
    return refusal(UserErrorCode.NOT_FOUND.value, f"{what} not found")


def not_allowed(message: str = "not allowed") -> GraphQLError:
    return refusal(UserErrorCode.NOT_ALLOWED.value, message)


def unauthenticated() -> GraphQLError:
    return refusal("UNAUTHENTICATED", "a bearer token is required")
