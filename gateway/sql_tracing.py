"""A span per SQL statement, when tracing: listeners on the engine's cursor events, attached
in the lifespan only when tracing is on (otherwise the engine has no listener at all).

The span: the statement's first word (`SELECT`, `INSERT`, `BEGIN`, ...), kind client, with
`db.system` (`sqlite`, `postgresql`), `db.operation.name` (the same word) and
`db.query.text`, the statement as sent: its values are bound parameters, never in the text.
A statement that fails gets an error status and `error.type` (the exception's class name).
Only under a recording span (a traced request): the outbox relay's polling makes none.

The listeners run in SQLAlchemy's greenlet, which carries the request task's context, so the
current span there is the request's.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["trace_statements"]

_SPAN = "_patron_span"  # the statement's span, on SQLAlchemy's execution context


def trace_statements(engine: AsyncEngine, tracer: Tracer) -> None:
    system = engine.dialect.name
    sync_engine = engine.sync_engine

    def before(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if context is None or not trace.get_current_span().is_recording():
            return
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        span = tracer.start_span(
            operation,
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": system,
                "db.operation.name": operation,
                "db.query.text": statement,
            },
        )
        setattr(context, _SPAN, span)

    def after(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        span = getattr(context, _SPAN, None)
        if span is not None:
            span.end()
            setattr(context, _SPAN, None)

    def failed(exception_context: Any) -> None:
        context = exception_context.execution_context
        span = getattr(context, _SPAN, None) if context is not None else None
        if span is not None:
            error = type(exception_context.original_exception).__name__
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR, error))
            span.end()
            setattr(context, _SPAN, None)

    event.listen(sync_engine, "before_cursor_execute", before)
    event.listen(sync_engine, "after_cursor_execute", after)
    event.listen(sync_engine, "handle_error", failed)
