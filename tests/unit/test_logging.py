"""The log configuration of `patron serve`, the JSON formatter, and how each kind of
GraphQL error is logged."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from graphql import GraphQLError
from opentelemetry.sdk.trace import TracerProvider

from gateway.error_logging import client_message, log_graphql_error
from gateway.json_logs import JsonFormatter
from gateway.logs import log_config
from gateway.request_id import RequestIdLogFilter, current_request_id
from gateway.settings import Settings
from loyalty.errors import DomainError, StoreUnavailable, UpstreamTimeout, UserErrorCode


def test_json_config_formats_every_handler_in_json() -> None:
    config = log_config(log_format="json")
    assert {name: f["()"] for name, f in config["formatters"].items()} == {
        "default": "gateway.json_logs.JsonFormatter",
        "access": "gateway.json_logs.JsonFormatter",
        "patron": "gateway.json_logs.JsonFormatter",
    }
    assert {name: h["filters"] for name, h in config["handlers"].items()} == {
        "default": ["request_id"], "access": ["request_id"], "patron": ["request_id"],
    }  # fmt: skip
    assert config["loggers"]["patron"] == {"level": "INFO"}
    assert config["root"] == {"handlers": ["patron"], "level": "WARNING"}


def test_text_config_keeps_the_request_id_on_every_line() -> None:
    config = log_config(log_format="text")
    assert all("[%(request_id)s]" in f["fmt"] for f in config["formatters"].values())
    assert config["loggers"]["patron"] == {"level": "INFO"}


@pytest.mark.parametrize(
    ("env", "given", "expected"),
    [("dev", None, "text"), ("prod", None, "json"), ("dev", "json", "json"), ("prod", "text", "text")],
)  # fmt: skip
def test_the_log_format_follows_the_environment_unless_set(
    env: str, given: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("PATRON_LOG_FORMAT", "PATRON_ENV"):
        monkeypatch.delenv(key, raising=False)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env=env, log_format=given, jwt_secret="s" * 32, card_secret="c",
    )  # fmt: skip
    assert settings.effective_log_format == expected


def record(message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord("patron.test", logging.WARNING, __file__, 1, message, args, None)
    made.created = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC).timestamp()
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_a_json_line_has_the_base_fields_and_merges_the_records_fields() -> None:
    token = current_request_id.set("req-7")
    try:
        line = record("%d points", 5, fields={"status": 200, "message": "not mine"})
        RequestIdLogFilter().filter(line)
    finally:
        current_request_id.reset(token)
    assert json.loads(JsonFormatter().format(line)) == {
        "time": "2026-11-23T12:00:00.123Z",
        "level": "WARNING",
        "logger": "patron.test",
        "message": "5 points",
        "request_id": "req-7",
        "status": 200,  # a field; "message" is not replaced
    }


def test_a_json_line_carries_the_trace_and_the_traceback() -> None:
    tracer = TracerProvider().get_tracer("test")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        exc_info = sys.exc_info()
    with tracer.start_as_current_span("op") as span:
        line = json.loads(JsonFormatter().format(record("failed", exc_info=exc_info)))
    context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert line["request_id"] == "-"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert line["exception"].endswith("RuntimeError: boom")
    assert "\n" not in JsonFormatter().format(record("a\nb", exc_info=exc_info))


@pytest.mark.parametrize(
    ("message", "logged"),
    [
        (
            """Variable '$input' got invalid value {'email': 'ava@example.com'}; Field 'x' is not defined.""",
            "Variable '$input' got invalid value (the value is not logged)",
        ),
        (
            """Variable '$t' has invalid value at .amount: Value cannot represent a Decimal: "lots".""",
            "Variable '$t' has invalid value (the value is not logged)",
        ),
        (
            'Int cannot represent non-integer value: "ava@example.com"',
            'Int cannot represent non-integer value: "…"',
        ),
        (
            r'Expected value of type "Money", found "say \"hi\"".',
            'Expected value of type "…", found "…".',
        ),
        ("Cannot query field 'nope' on type 'Member'.", "Cannot query field 'nope' on type 'Member'."),
        ("Syntax Error: Expected Name, found <EOF>.", "Syntax Error: Expected Name, found <EOF>."),
        ("x" * 400, "x" * 300 + "…"),
    ],
)  # fmt: skip
def test_what_a_client_sent_is_cut_from_request_errors(message: str, logged: str) -> None:
    assert client_message(message) == logged


def located(original: Exception | None, path: list[str | int] | None = None) -> GraphQLError:
    return GraphQLError("the message", path=path, original_error=original)


@pytest.mark.parametrize(
    ("error", "level", "message", "traceback"),
    [
        (located(None), logging.INFO, "GraphQL request error: the message", False),
        (
            located(GraphQLError("no", extensions={"code": "NOT_ALLOWED"}), ["me", "insights"]),
            logging.INFO, "GraphQL error NOT_ALLOWED at me.insights: the message", False,
        ),
        (
            located(DomainError(UserErrorCode.NOT_FOUND, "no such member"), ["member"]),
            logging.INFO, "GraphQL error DomainError at member: the message", False,
        ),
        (
            located(UpstreamTimeout("cdp", "no complete reply within 1 s"), ["me", "profile"]),
            logging.WARNING,
            "GraphQL error UPSTREAM_TIMEOUT at me.profile: cdp: no complete reply within 1 s",
            False,
        ),
        (
            located(StoreUnavailable(), ["me", "points"]), logging.WARNING,
            "GraphQL error DATABASE_UNAVAILABLE at me.points: the loyalty database is unavailable",
            False,
        ),
        (located(KeyError("x"), ["me"]), logging.ERROR, "unexpected error at me", True),
        (located(RuntimeError("an extension failed")), logging.ERROR, "unexpected error at None", True),
    ],
)  # fmt: skip
def test_each_kind_of_graphql_error_is_logged_at_its_level(
    error: GraphQLError, level: int, message: str, traceback: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="patron.graphql")
    log_graphql_error(error)
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("patron.graphql", level, message)
    ]
    assert bool(caplog.records[0].exc_info) is traceback
