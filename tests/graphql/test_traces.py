"""Traces of a member view, read from the SDK's in-memory exporter: exact span names,
parents and attributes; the W3C trace context sent to the upstreams; nothing without a
configured exporter."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import event

from gateway.app import create_app
from gateway.demo import IN_PROCESS_BASE, Fakes
from gateway.settings import Settings
from tests.conftest import Clock, Harness, SqlCounter, token
from tests.graphql.conftest import enroll, purchase
from tests.graphql.test_member_view import seed_upstreams

MEMBER_VIEW = """
query MemberView {
  me {
    profile { firstName }
    points { available pending }
    tier { current { name content { fields } } }
    cart { total { amount } }
    orders(first: 5) { orderNumber }
  }
}
"""
FAKES_HOST = "fakes.patron.internal"
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


class Recording(httpx.AsyncBaseTransport):
    """The fakes in process; keeps each upstream request's `traceparent` header."""

    def __init__(self, fakes: Fakes) -> None:
        self.inner = httpx.ASGITransport(app=fakes.app())
        self.traceparents: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.traceparents.append(request.headers.get("traceparent"))
        return await self.inner.handle_async_request(request)


@dataclass
class Traced(Harness):
    spans: InMemorySpanExporter
    upstream: Recording


async def _traced(
    settings: Settings, fakes: Fakes, clock: Clock, exporter: InMemorySpanExporter | None
) -> AsyncIterator[Traced]:
    transport = Recording(fakes)
    http = httpx.AsyncClient(mounts={IN_PROCESS_BASE: transport})
    processor = SimpleSpanProcessor(exporter) if exporter is not None else None
    app = create_app(settings, http=http, clock=clock, span_processor=processor)
    counter = SqlCounter()
    async with app.router.lifespan_context(app):

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            counter.statements.append(statement)

        event.listen(app.state.gateway.engine.sync_engine, "before_cursor_execute", count)
        asgi = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=asgi, base_url="http://patron.test") as client:
            yield Traced(
                app, client, fakes, clock, counter, exporter or InMemorySpanExporter(), transport
            )
    await http.aclose()


@pytest.fixture
async def traced(settings: Settings, fakes: Fakes, clock: Clock) -> AsyncIterator[Traced]:
    async for h in _traced(settings, fakes, clock, InMemorySpanExporter()):
        yield h


@pytest.fixture
async def untraced(settings: Settings, fakes: Fakes, clock: Clock) -> AsyncIterator[Traced]:
    async for h in _traced(settings, fakes, clock, None):
        yield h


async def view(h: Traced, **headers: str) -> None:
    response = await h.client.post(
        "/graphql",
        json={"query": MEMBER_VIEW},
        headers={"Authorization": f"Bearer {token('cust-1', 'member')}", **headers},
    )
    assert response.status_code == 200 and "errors" not in response.json(), response.text


async def seeded(h: Traced) -> None:
    seed_upstreams(h)
    member_id = await enroll(h, "cust-1")
    await purchase(h, member_id, "order-1", "3000.00")
    h.spans.clear()
    h.sql.reset()
    h.upstream.traceparents.clear()


def hex_id(value: int, digits: int) -> str:
    return format(value, f"0{digits}x")


async def test_a_member_view_is_one_trace(traced: Traced) -> None:
    h = traced
    await seeded(h)
    await view(h)

    spans = h.spans.get_finished_spans()
    roots = [span for span in spans if span.parent is None]
    assert [root.name for root in roots] == ["query MemberView"]
    root = roots[0]
    assert root.kind is SpanKind.SERVER
    assert dict(root.attributes or {}) == {
        "http.request.method": "POST",
        "url.path": "/graphql",
        "graphql.operation.type": "query",
        "graphql.operation.name": "MemberView",
        "http.response.status_code": 200,
    }
    children = [span for span in spans if span is not root]
    assert all(span.parent is not None for span in children)
    assert {span.parent.span_id for span in children if span.parent} == {root.context.span_id}
    assert {span.context.trace_id for span in spans} == {root.context.trace_id}

    upstream = [span for span in children if span.name.split()[-1] in ("commerce", "cdp", "cms")]
    assert Counter(span.name for span in upstream) == {
        "POST commerce": 1,  # the OAuth token
        "GET commerce": 2,  # the cart, the orders
        "GET cdp": 1,  # the profile
        "POST cms": 1,  # the tier's content (one batch)
    }
    for span in upstream:
        assert span.kind is SpanKind.CLIENT
        assert dict(span.attributes or {}) == {
            "patron.upstream": span.name.split()[1],
            "http.request.method": span.name.split()[0],
            "server.address": FAKES_HOST,
            "patron.upstream.attempts": 1,
            "http.response.status_code": 200,
        }
    # Each upstream request carried its own span as the W3C parent (sampled).
    assert all(span.context.trace_flags.sampled for span in upstream)
    trace_id = hex_id(root.context.trace_id, 32)
    assert sorted(h.upstream.traceparents, key=str) == sorted(
        f"00-{trace_id}-{hex_id(span.context.span_id, 16)}-{hex_id(span.context.trace_flags, 2)}"
        for span in upstream
    )

    sql = [span for span in children if span not in upstream]
    assert sorted(_text(span) for span in sql) == sorted(h.sql.statements)
    dialect = h.engine.dialect.name
    for span in sql:
        assert span.kind is SpanKind.CLIENT
        operation = _text(span).split(None, 1)[0].upper()
        assert span.name == operation
        assert dict(span.attributes or {}) == {
            "db.system": dialect,
            "db.operation.name": operation,
            "db.query.text": _text(span),
        }
    assert Counter(span.name for span in sql if span.name != "BEGIN") == {
        "SELECT": len(h.sql.queries)
    }


def _text(span: ReadableSpan) -> str:
    return str((span.attributes or {})["db.query.text"])


async def test_the_callers_trace_context_is_continued(traced: Traced) -> None:
    h = traced
    await seeded(h)
    await view(h, traceparent=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01")
    spans = h.spans.get_finished_spans()
    root = next(span for span in spans if span.name == "query MemberView")
    assert root.parent is not None and root.parent.is_remote
    assert hex_id(root.parent.span_id, 16) == CALLER_SPAN
    assert {hex_id(span.context.trace_id, 32) for span in spans} == {CALLER_TRACE}


async def test_a_failing_request_and_an_unnamed_one(traced: Traced) -> None:
    h = traced
    response = await h.client.post("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 200
    refused = await h.client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": "Bearer x"}
    )
    assert refused.status_code == 401
    names = [(span.name, span.attributes.get("http.response.status_code"))
             for span in h.spans.get_finished_spans() if span.parent is None]  # fmt: skip
    assert names == [("query", 200), ("POST /graphql", 401)]
    unnamed = h.spans.get_finished_spans()[0]
    assert unnamed.attributes is not None
    assert "graphql.operation.name" not in unnamed.attributes
    assert unnamed.status.status_code is StatusCode.UNSET


async def test_probes_and_scrapes_are_not_traced(traced: Traced) -> None:
    h = traced
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await h.client.get(path)).status_code == 200
    assert h.spans.get_finished_spans() == ()


async def test_without_an_exporter_nothing_is_traced(untraced: Traced) -> None:
    h = untraced
    assert h.app.state.tracing.tracer is None
    await seeded(h)
    await view(h)
    assert h.upstream.traceparents == [None] * 5  # no trace context sent
