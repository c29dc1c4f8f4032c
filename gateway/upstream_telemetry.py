"""What the gateway records of each upstream call (`adapters.http.UpstreamTelemetry`): its
metrics always, and when tracing, a span that is the child of the request's span and whose
W3C `traceparent` goes to the upstream with every attempt.

The span: `<METHOD> <upstream>` (`GET commerce`), kind client, with `patron.upstream`,
`http.request.method`, `server.address`, `http.response.status_code` (the last reply's),
`patron.upstream.attempts` and, when it failed, `error.type` (the error code) and an error
status. No URL: a path or a query holds customer and user ids.
"""

from __future__ import annotations

import time

import httpx
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from gateway.metrics import Metrics
from gateway.tracing import PROPAGATOR

__all__ = ["GatewayUpstreamTelemetry"]


class GatewayUpstreamTelemetry:
    def __init__(self, metrics: Metrics, tracer: Tracer | None = None) -> None:
        self.metrics = metrics
        self.tracer = tracer

    def call(self, upstream: str, method: str) -> _Call:
        span: Span | None = None
        if self.tracer is not None and trace.get_current_span().is_recording():
            span = self.tracer.start_span(
                f"{method} {upstream}",
                kind=SpanKind.CLIENT,
                attributes={"patron.upstream": upstream, "http.request.method": method},
            )
        return _Call(self.metrics, upstream, span)


class _Call:
    __slots__ = ("attempts", "metrics", "span", "started", "status", "upstream")

    def __init__(self, metrics: Metrics, upstream: str, span: Span | None) -> None:
        self.metrics = metrics
        self.upstream = upstream
        self.span = span
        self.started = time.perf_counter()
        self.attempts = 0
        self.status: int | None = None

    def attempt(self, request: httpx.Request) -> None:
        self.attempts += 1
        if self.span is not None:
            if self.attempts == 1:
                self.span.set_attribute("server.address", request.url.host)
            PROPAGATOR.inject(request.headers, context=trace.set_span_in_context(self.span))

    def replied(self, status: int) -> None:
        self.status = status

    def finished(self, outcome: str) -> None:
        seconds = time.perf_counter() - self.started
        self.metrics.upstream_call(self.upstream, outcome, seconds, self.attempts)
        span = self.span
        if span is None:
            return
        span.set_attribute("patron.upstream.attempts", self.attempts)
        if self.status is not None:
            span.set_attribute("http.response.status_code", self.status)
        if outcome != "ok":
            span.set_attribute("error.type", outcome)
            span.set_status(Status(StatusCode.ERROR, outcome))
        span.end()
