"""`ObservedOperation`, a schema extension: tells the HTTP request it runs in
(`gateway.observed_requests.RequestObservation`, in the ASGI scope's state) which operation
it was (name and type, from the parsed document), how it ended (`ok`, `field_errors`,
`request_error`) and whether the database was unavailable, and names the request's span
after it (`query MemberView`). Operations outside an observed HTTP request (WebSocket
subscriptions) are left alone.

Only the operation's name and type are read: never the query text nor its variables.
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from gateway.observed_requests import ObservedOutcome, RequestObservation, observation_of
from loyalty.errors import StoreUnavailable

__all__ = ["ObservedOperation"]


class ObservedOperation(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            # No operation (an unknown operationName, no query, a mutation by GET): the
            # request's answer is a refusal.
            observation = self._observation()
            if observation is not None:
                observation.outcome = ObservedOutcome.REQUEST_ERROR
            raise
        observation = self._observation()
        if observation is not None:
            self._tell(observation)

    def _observation(self) -> RequestObservation | None:
        request = getattr(self.execution_context.context, "request", None)
        scope = getattr(request, "scope", None)
        return observation_of(scope) if scope is not None else None

    def _tell(self, observation: RequestObservation) -> None:
        ctx = self.execution_context
        try:
            operation_type = ctx.operation_type.value  # raises without a parsed document
        except RuntimeError:
            operation_type = None
        if operation_type is not None:
            observation.operation(ctx.operation_name, operation_type)
        result = ctx.result
        errors = list(result.errors or []) if result is not None else []
        executed = result is not None and (
            result.data is not None or any(e.path is not None for e in errors)
        )
        if not executed:  # parse, validation, variables (gateway.graphql_http)
            observation.outcome = ObservedOutcome.REQUEST_ERROR
            return
        observation.outcome = ObservedOutcome.FIELD_ERRORS if errors else ObservedOutcome.OK
        observation.database_unavailable = any(
            isinstance(error.original_error, StoreUnavailable) for error in errors
        )
