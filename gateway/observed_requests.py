"""`ObservedRequests` (ASGI middleware): every HTTP request, timed from its arrival to the end
of its answer, ends in one access log line, the GraphQL request metrics (on `/graphql`) and,
when tracing, the request's span (`gateway.tracing`).

The access line (logger `patron.access`, INFO): method, path (never the query string: a GET
query's variables are there), status, duration, and on `/graphql` the operation (name and
type, as `ObservedOperation` found them in the parsed document), its outcome, and the
caller's roles (`anonymous`, `member`, `associate,marketer`, ...). Never the caller's
identity (its `sub` is a customer id), a token, the client's address, a header, the query,
its variables or the answer. `/healthz`, `/readyz` and `/metrics` answered below 400 are
not logged nor traced (probes and scrapes every few seconds).

GraphQL metrics (`gateway.metrics`): by operation name, type and outcome:

- `ok`, `field_errors` (executed, with errors), `request_error` (parse, validation,
  variables, no such operation: nothing executed), from the operation (`ObservedOperation`);
- `unauthenticated` (401), `rate_limited` (429), `refused` (any other 4xx before
  execution: method, media type, CSRF, a malformed body), `internal_error` (5xx), from the
  status.

Operation names are a bounded label (`OperationNames`): `anonymous` for an unnamed
operation, `unknown` when none was found, a name as it is for the first
`MAX_OPERATION_NAMES` distinct names of operations that executed, `other` after that or for
a name only seen in request errors, so a client inventing names cannot grow the metrics.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.metrics import Metrics
from gateway.tracing import PROPAGATOR, Tracing
from loyalty.access import Viewer

__all__ = [
    "MAX_OPERATION_NAMES",
    "ObservedOutcome",
    "ObservedRequests",
    "OperationNames",
    "RequestObservation",
    "observation_of",
    "roles_of",
]

access_log = logging.getLogger("patron.access")

GRAPHQL_PATH = "/graphql"
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
MAX_OPERATION_NAMES = 100
MAX_LOGGED_PATH = 200  # characters: a path is the client's, and may be anything
_STATE_KEY = "patron.observation"


class ObservedOutcome(enum.StrEnum):
    OK = "ok"
    FIELD_ERRORS = "field_errors"
    REQUEST_ERROR = "request_error"
    UNAUTHENTICATED = "unauthenticated"
    RATE_LIMITED = "rate_limited"
    REFUSED = "refused"
    INTERNAL_ERROR = "internal_error"


@dataclass(slots=True)
class RequestObservation:
    """What the request's parts tell the middleware (in `scope["state"]`)."""

    span: Span | None = None
    operation_name: str | None = None
    operation_type: str | None = None  # query, mutation, subscription
    outcome: ObservedOutcome | None = None
    database_unavailable: bool = False

    def operation(self, name: str | None, operation_type: str) -> None:
        self.operation_name = name
        self.operation_type = operation_type
        if self.span is not None:
            self.span.update_name(f"{operation_type} {name}" if name else operation_type)
            self.span.set_attribute("graphql.operation.type", operation_type)
            if name:
                self.span.set_attribute("graphql.operation.name", name)


def observation_of(scope: Scope) -> RequestObservation | None:
    observation = scope.get("state", {}).get(_STATE_KEY)
    return observation if isinstance(observation, RequestObservation) else None


class OperationNames:
    """The `operation` label of the GraphQL metrics, bounded (see the module)."""

    def __init__(self, limit: int = MAX_OPERATION_NAMES) -> None:
        self.limit = limit
        self.known: set[str] = set()

    def label(self, observation: RequestObservation) -> str:
        if observation.operation_type is None:
            return "unknown"
        name = observation.operation_name
        if name is None:
            return "anonymous"
        if name in self.known:
            return name
        executed = observation.outcome in (ObservedOutcome.OK, ObservedOutcome.FIELD_ERRORS)
        if executed and len(self.known) < self.limit:
            self.known.add(name)
            return name
        return "other"


def roles_of(viewer: Viewer | None) -> str | None:
    """The caller's roles for the access line (never who it is); None before
    authentication (a refused token, a webhook)."""
    if viewer is None:
        return None
    if not viewer.is_authenticated:
        return "anonymous"
    return ",".join(sorted(role.value for role in viewer.roles)) or "none"


def outcome_of(status: int, observation: RequestObservation) -> ObservedOutcome:
    if status >= 500:
        return ObservedOutcome.INTERNAL_ERROR
    if status == 401:
        return ObservedOutcome.UNAUTHENTICATED
    if status == 429:
        return ObservedOutcome.RATE_LIMITED
    if observation.outcome is not None:
        return observation.outcome
    return ObservedOutcome.REFUSED if status >= 400 else ObservedOutcome.OK


class ObservedRequests:
    """ASGI middleware (see the module). After `RequestIds`: its lines carry the id."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, tracing: Tracing) -> None:
        self.app = app
        self.metrics = metrics
        self.tracer = tracing.tracer
        self.names = OperationNames()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        observation = RequestObservation()
        scope.setdefault("state", {})[_STATE_KEY] = observation
        status = 500  # unless an answer starts
        path: str = scope["path"]

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        token: object = None
        if self.tracer is not None and path not in QUIET_PATHS:
            observation.span = self._start_span(scope)
            token = otel_context.attach(trace.set_span_in_context(observation.span))
        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            try:
                self._finish(scope, observation, status, seconds)
            finally:
                if token is not None:
                    otel_context.detach(token)  # type: ignore[arg-type]

    def _start_span(self, scope: Scope) -> Span:
        assert self.tracer is not None
        method: str = scope["method"]
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers") or ()
            if key in (b"traceparent", b"tracestate")
        }
        parent = PROPAGATOR.extract(carrier) if carrier else None
        return self.tracer.start_span(
            f"{method} {scope['path']}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        )

    def _finish(
        self, scope: Scope, observation: RequestObservation, status: int, seconds: float
    ) -> None:
        path: str = scope["path"]
        graphql = path == GRAPHQL_PATH
        fields: dict[str, Any] = {
            "method": scope["method"],
            "path": path[:MAX_LOGGED_PATH],
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
        }
        if graphql:
            outcome = outcome_of(status, observation)
            operation = self.names.label(observation)
            operation_type = observation.operation_type or "unknown"
            self.metrics.graphql_request(operation, operation_type, outcome.value, seconds)
            if observation.database_unavailable:
                self.metrics.database_unavailable_in("graphql")
            fields["operation"] = operation
            fields["operation_type"] = operation_type
            fields["outcome"] = outcome.value
        role = roles_of(scope.get("state", {}).get("viewer"))
        if role is not None:
            fields["role"] = role
        span = observation.span
        if span is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        quiet = path in QUIET_PATHS and status < 400
        if not quiet and access_log.isEnabledFor(logging.INFO):
            access_log.info(_access_text(fields), extra={"fields": fields})
        if span is not None:
            span.end()


def _access_text(fields: dict[str, Any]) -> str:
    text = f"{fields['method']} {fields['path']} {fields['status']} {fields['duration_ms']} ms"
    if "operation" in fields:
        text += f" {fields['operation_type']} {fields['operation']} {fields['outcome']}"
    if "role" in fields:
        text += f" role={fields['role']}"
    return text
