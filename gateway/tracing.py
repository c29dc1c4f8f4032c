"""OpenTelemetry traces, on only when an OTLP endpoint is configured.

`PATRON_OTLP_ENDPOINT` (or the standard `OTEL_EXPORTER_OTLP_ENDPOINT`) is the collector's
base URL (`http://collector:4318`); spans go to `<base>/v1/traces` in OTLP over
HTTP/protobuf, in batches, from a background thread. `PATRON_TRACE_SAMPLE_RATIO` (1.0)
keeps that share of traces, chosen by trace id. Nothing configured: `Tracing.tracer` is
None, no provider, processor or thread exists, and every hook costs one `is None` check.

The spans (the README's Observability section lists their names and attributes):

- one per HTTP request (`gateway.observed_requests`), the root, named `<type> <operation
  name>` for a GraphQL operation (`query MemberView`), else `<METHOD> <path>`. An incoming
  W3C `traceparent` makes it a child of the caller's span (the storefront's); the sampling
  decision stays ours (a client cannot force its requests to be traced);
- one per upstream call, its child (`gateway.upstream_telemetry`), whose `traceparent` is
  sent to the upstream;
- one per SQL statement, its child (`gateway.sql_tracing`).

Upstream calls and SQL outside a traced request (the outbox relay, a background cache
refresh started after the request ended) make no spans of their own.

The provider is this app's, never the process-global one: tests give `create_app` a span
processor of their own (an in-memory exporter) and read exactly its spans.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler, TraceIdRatioBased
from opentelemetry.trace import Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.settings import Settings

__all__ = ["PROPAGATOR", "SERVICE_NAME", "TRACER_NAME", "Tracing"]

SERVICE_NAME = "patron"
TRACER_NAME = "patron"
# W3C trace context only: `traceparent` in, `traceparent` out to the upstreams.
PROPAGATOR = TraceContextTextMapPropagator()


class Tracing:
    """This app's tracer, or none. `start()` (the lifespan) attaches the exporter,
    `shutdown()` flushes what is left."""

    def __init__(
        self,
        processor: Callable[[], SpanProcessor] | None = None,
        *,
        sample_ratio: float = 1.0,
    ) -> None:
        """`processor` makes the span processor (on `start()`, so that no exporter thread
        exists in a process that only builds the app, as `patron serve` does to validate
        the settings before it starts its workers); None: no tracing."""
        self._processor = processor
        self.provider: TracerProvider | None = None
        self.tracer: Tracer | None = None
        if processor is None:
            return
        sampler: Sampler = ALWAYS_ON if sample_ratio >= 1 else TraceIdRatioBased(sample_ratio)
        self.provider = TracerProvider(
            sampler=sampler, resource=Resource.create({"service.name": SERVICE_NAME})
        )
        self.tracer = self.provider.get_tracer(TRACER_NAME)

    @classmethod
    def from_settings(cls, settings: Settings, processor: SpanProcessor | None = None) -> Tracing:
        """`processor` (tests) replaces the OTLP exporter; without either, no tracing."""
        ratio = settings.trace_sample_ratio
        if processor is not None:
            given = processor
            return cls(lambda: given, sample_ratio=ratio)
        url = settings.otlp_traces_url
        if url is None:
            return cls(None)
        return cls(lambda: BatchSpanProcessor(OTLPSpanExporter(endpoint=url)), sample_ratio=ratio)

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    def start(self) -> None:
        if self.provider is not None and self._processor is not None:
            self.provider.add_span_processor(self._processor())

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()
