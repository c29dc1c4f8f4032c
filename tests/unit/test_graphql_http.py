"""The GraphQL-over-HTTP rules alone (`gateway.graphql_http`, `gateway.csrf`,
`gateway.cors`, `gateway.request_id`, `gateway.suggestions`): Accept negotiation,
Content-Type, the request parameters, the CSRF preflight rule, origins, request ids and
suggestion stripping, each as a table of exact answers."""

from __future__ import annotations

import logging
import re

import orjson
import pytest
from graphql import GraphQLError
from strawberry.types import ExecutionResult

from gateway.cors import normalized_origin
from gateway.csrf import is_preflighted, require_preflight
from gateway.graphql_http import (
    APPLICATION_JSON,
    GRAPHQL_RESPONSE_JSON,
    Refusal,
    is_request_error,
    json_body,
    query_string_params,
    request_data,
    require_json_content_type,
    require_method,
    response_media_type,
    response_status,
)
from gateway.masking import masked, should_mask
from gateway.request_id import RequestIdLogFilter, current_request_id, request_id_from
from gateway.suggestions import without_suggestions
from loyalty.errors import StoreUnavailable

GR = GRAPHQL_RESPONSE_JSON
JSON = APPLICATION_JSON
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def refusal(call: object, *args: object) -> tuple[int, str, str]:
    with pytest.raises(Refusal) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.status_code, caught.value.code, caught.value.reason


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("application/json", JSON),
        ("application/graphql-response+json", GR),
        ("application/graphql-response+json, application/json", GR),
        ("application/json, application/graphql-response+json", GR),  # equal q: ours first
        ("application/graphql-response+json;q=0.9, application/json", JSON),
        ("application/json;q=0.5, application/graphql-response+json;q=0.8", GR),
        ("application/graphql-response+json;q=0.5, */*", JSON),  # */* gives json q=1
        ("application/graphql-response+json; charset=utf-8", GR),
        ("APPLICATION/GRAPHQL-RESPONSE+JSON", GR),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", JSON),  # a browser
        ("application/json, multipart/mixed", JSON),  # GraphiQL's fetcher
        ("application/graphql-response+json;q=0, application/json", JSON),
        ("application/json;q=bad, application/graphql-response+json", GR),  # malformed q skipped
    ],
)
def test_the_answer_media_type_follows_accept(accept: str | None, expected: str) -> None:
    assert response_media_type(accept) == expected


@pytest.mark.parametrize(
    "accept",
    [
        "text/html",
        "application/xml",
        "multipart/mixed",
        "application/json;q=0",
        "garbage",
        "*/*;q=0",
    ],
)
def test_an_accept_allowing_neither_json_type_is_406(accept: str) -> None:
    assert refusal(response_media_type, accept) == (
        406,
        "NOT_ACCEPTABLE",
        "the Accept header allows neither application/graphql-response+json nor application/json",
    )


def test_status_of_request_errors_depends_on_the_media_type() -> None:
    assert response_status(GR, request_error=True) == 400
    assert response_status(JSON, request_error=True) == 200
    assert response_status(GR, request_error=False) == 200
    assert response_status(JSON, request_error=False) == 200


def test_a_request_error_is_one_that_never_executed() -> None:
    located = GraphQLError("Cannot query field 'x' on type 'Query'.")
    at_field = GraphQLError("boom", path=["me"])
    assert is_request_error(ExecutionResult(data=None, errors=[located])) is True
    assert is_request_error(ExecutionResult(data=None, errors=[at_field])) is False  # executed
    assert is_request_error(ExecutionResult(data={"a": 1}, errors=[located])) is False
    assert is_request_error(ExecutionResult(data=None, errors=None)) is False


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_get_and_post_are_the_methods(method: str) -> None:
    require_method(method)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
def test_other_methods_are_405_with_allow(method: str) -> None:
    with pytest.raises(Refusal) as caught:
        require_method(method)
    assert (caught.value.status_code, caught.value.code, caught.value.headers) == (
        405,
        "METHOD_NOT_ALLOWED",
        {"Allow": "GET, POST"},
    )


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8",
     'application/json; charset="utf-8"', "application/json;charset=utf8"],
)  # fmt: skip
def test_json_with_an_optional_utf8_charset_is_accepted(content_type: str) -> None:
    require_json_content_type(content_type)


@pytest.mark.parametrize(
    ("content_type", "reason"),
    [
        (None, "a POST must have Content-Type: application/json"),
        ("", "unsupported Content-Type '(empty)': send application/json"),
        ("text/plain", "unsupported Content-Type 'text/plain': send application/json"),
        (
            "application/graphql",
            "unsupported Content-Type 'application/graphql': send application/json",
        ),
        (
            "multipart/form-data; boundary=x",
            "unsupported Content-Type 'multipart/form-data': send application/json",
        ),
        (
            "application/x-www-form-urlencoded",
            "unsupported Content-Type 'application/x-www-form-urlencoded': send application/json",
        ),
        (
            "application/jsonx",
            "unsupported Content-Type 'application/jsonx': send application/json",
        ),
        (
            "text/application/json",
            "unsupported Content-Type 'text/application/json': send application/json",
        ),
        ("application/json; charset=latin-1", "the request body must be UTF-8 (charset=utf-8)"),
    ],
)
def test_other_content_types_are_415(content_type: str | None, reason: str) -> None:
    assert refusal(require_json_content_type, content_type) == (
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        reason,
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "the request body is empty: send a JSON object with a query"),
        (b'{ "not a JSON', "the request body is not valid JSON (UTF-8)"),
        (b'{"query": "\xff"}', "the request body is not valid JSON (UTF-8)"),
        (b'{"query": NaN}', "the request body is not valid JSON (UTF-8)"),
        (b"[" * 2000 + b"]" * 2000, "the request body is not valid JSON (UTF-8)"),  # too deep
        (
            b'[{"query": "{ __typename }"}]',
            "batched operations (a JSON array) are not supported: send one operation per request",
        ),
        (b'"{ __typename }"', "the request body must be a JSON object"),
        (b"null", "the request body must be a JSON object"),
        (b"42", "the request body must be a JSON object"),
    ],
)
def test_a_body_that_is_not_one_json_object_is_400(body: bytes, reason: str) -> None:
    assert refusal(json_body, body, orjson.loads) == (400, "BAD_REQUEST", reason)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"query": {"obj": "ect"}}, "the parameter 'query' must be a string"),
        ({"query": 0}, "the parameter 'query' must be a string"),
        ({"query": False}, "the parameter 'query' must be a string"),
        ({"query": ["array"]}, "the parameter 'query' must be a string"),
        (
            {"query": "{a}", "variables": "string"},
            "the parameter 'variables' must be an object or null",
        ),
        (
            {"query": "{a}", "variables": ["array"]},
            "the parameter 'variables' must be an object or null",
        ),
        ({"query": "{a}", "variables": 0}, "the parameter 'variables' must be an object or null"),
        (
            {"query": "{a}", "operationName": 0},
            "the parameter 'operationName' must be a string or null",
        ),
        (
            {"query": "{a}", "operationName": {"obj": "ect"}},
            "the parameter 'operationName' must be a string or null",
        ),
        (
            {"query": "{a}", "extensions": "string"},
            "the parameter 'extensions' must be an object or null",
        ),
        (
            {"query": "{a}", "extensions": False},
            "the parameter 'extensions' must be an object or null",
        ),
    ],
)
def test_parameters_of_the_wrong_type_are_400(params: dict[str, object], reason: str) -> None:
    assert refusal(request_data, params) == (400, "BAD_REQUEST", reason)


def test_parameters_of_the_right_types_make_the_request() -> None:
    data = request_data(
        {"query": "{a}", "variables": {"x": 1}, "operationName": "A", "extensions": {"e": 1},
         "unknown": "ignored"}
    )  # fmt: skip
    assert (data.query, data.variables, data.operation_name, data.extensions) == (
        "{a}",
        {"x": 1},
        "A",
        {"e": 1},
    )
    nulls = request_data(
        {"query": None, "variables": None, "operationName": None, "extensions": None}
    )
    assert (nulls.query, nulls.variables, nulls.operation_name, nulls.extensions) == (None,) * 4


def test_get_parameters_are_decoded_once_each() -> None:
    params = query_string_params(
        [("query", "{a}"), ("variables", '{"x":1}'), ("operationName", "A"), ("extensions", "null"),
         ("other", "1"), ("other", "2")],
        orjson.loads,
    )  # fmt: skip
    assert params == {
        "query": "{a}",
        "variables": {"x": 1},
        "operationName": "A",
        "extensions": None,
    }
    assert refusal(query_string_params, [("query", "{a}"), ("query", "{b}")], orjson.loads) == (
        400,
        "BAD_REQUEST",
        "the parameter 'query' is given more than once",
    )
    assert refusal(query_string_params, [("variables", "{x")], orjson.loads) == (
        400,
        "BAD_REQUEST",
        "the parameter 'variables' is not valid JSON",
    )
    assert refusal(query_string_params, [("extensions", "")], orjson.loads) == (
        400,
        "BAD_REQUEST",
        "the parameter 'extensions' is not valid JSON",
    )


# --- CSRF ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "preflighted"),
    [
        ({}, False),  # a GET from an <img> or a link
        ({"content-type": "text/plain"}, False),
        ({"content-type": "text/plain;charset=UTF-8"}, False),  # fetch() with a string body
        ({"content-type": "application/x-www-form-urlencoded"}, False),  # a <form>
        ({"content-type": "multipart/form-data; boundary=x"}, False),
        ({"content-type": "Multipart/Form-Data"}, False),
        ({"x-patron-csrf": ""}, False),  # empty does not count
        ({"x-patron-csrf": "   "}, False),
        ({"content-type": "application/json"}, True),
        ({"content-type": "application/json; charset=utf-8"}, True),
        ({"content-type": ""}, True),  # not a safelisted value: a browser preflights it
        ({"x-patron-csrf": "1"}, True),
        ({"apollo-require-preflight": "true"}, True),
        ({"x-apollo-operation-name": "Me"}, True),
        ({"content-type": "text/plain", "x-patron-csrf": "1"}, True),
    ],
)
def test_a_request_is_preflighted_when_a_browser_would_have_asked(
    headers: dict[str, str], preflighted: bool
) -> None:
    assert is_preflighted(headers) is preflighted


def test_a_request_that_was_not_preflighted_is_refused() -> None:
    assert refusal(require_preflight, {"content-type": "text/plain"}) == (
        400,
        "CSRF_PREFLIGHT_REQUIRED",
        "this request could have been sent by another site (CSRF): send a POST with "
        "Content-Type: application/json, or the header X-Patron-CSRF: 1",
    )


# --- origins, request ids, suggestions, masking -------------------------------------------
@pytest.mark.parametrize(
    ("value", "origin"),
    [
        ("https://www.example.com", "https://www.example.com"),
        ("HTTPS://WWW.Example.COM/", "https://www.example.com"),
        ("https://www.example.com:443", "https://www.example.com"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_origins_are_normalized_as_browsers_send_them(value: str, origin: str) -> None:
    assert normalized_origin(value) == origin


@pytest.mark.parametrize(
    "value", ["*", "null", "www.example.com", "ftp://example.com", "https://a.com/path",
              "https://user@a.com", "https://a.com?x=1", "https://a.com:99999"],
)  # fmt: skip
def test_anything_but_an_origin_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        normalized_origin(value)


@pytest.mark.parametrize(
    "incoming",
    ["0f8fad5b-d9cb-469f-a165-70867728950e", "abc", "Root=1-67891233-abcdef012345678912345678"[5:],
     "trace:span.1_2", "x" * 128],
)  # fmt: skip
def test_a_plausible_incoming_request_id_is_kept(incoming: str) -> None:
    assert request_id_from(incoming) == incoming


@pytest.mark.parametrize(
    "incoming", [None, "", "x" * 129, "has space", 'quo"te', "new\nline", "semi;colon", "é"]
)
def test_anything_else_gets_a_new_uuid4(incoming: str | None) -> None:
    generated = request_id_from(incoming)
    assert UUID4.fullmatch(generated), generated
    assert generated != request_id_from(incoming)


def test_log_records_carry_the_request_id_or_a_dash() -> None:
    record = logging.LogRecord("patron", logging.ERROR, __file__, 1, "boom", None, None)
    RequestIdLogFilter().filter(record)
    assert record.request_id == "-"
    token = current_request_id.set("req-1")
    try:
        record = logging.LogRecord("patron", logging.ERROR, __file__, 1, "boom", None, None)
        RequestIdLogFilter().filter(record)
        assert record.request_id == "req-1"
    finally:
        current_request_id.reset(token)


@pytest.mark.parametrize(
    ("message", "stripped"),
    [
        ("Cannot query field 'mee' on type 'Query'. Did you mean 'me'?",
         "Cannot query field 'mee' on type 'Query'."),
        ("Unknown argument 'frist' on field 'Member.orders'. Did you mean 'first'?",
         "Unknown argument 'frist' on field 'Member.orders'."),
        ("Unknown type 'Membr'. Did you mean 'Member', 'Members', or 'MemberX'?",
         "Unknown type 'Membr'."),
        ("Value 'POSS' does not exist in 'Channel' enum. Did you mean the enum value 'POS'?",
         "Value 'POSS' does not exist in 'Channel' enum."),
        ("Field 'program' of type 'Program!' must have a selection of subfields."
         " Did you mean 'program { ... }'?",
         "Field 'program' of type 'Program!' must have a selection of subfields."),
        ("Cannot query field 'zzz' on type 'Query'.", "Cannot query field 'zzz' on type 'Query'."),
    ],
)  # fmt: skip
def test_suggestions_are_stripped_and_the_rest_kept(message: str, stripped: str) -> None:
    assert without_suggestions(message) == stripped


def test_only_unexpected_errors_are_masked_with_the_request_id() -> None:
    from graphql import parse

    node = parse("{ a }").definitions[0]
    bug = GraphQLError("KeyError: 'secret'", path=["me"], original_error=KeyError("secret"))
    ours = GraphQLError("database unavailable", path=["me"], original_error=StoreUnavailable())
    bad_literal = GraphQLError("Expected Decimal", nodes=[node], original_error=ValueError())
    extension_crash = GraphQLError("boom", original_error=RuntimeError("boom"))
    assert [should_mask(e) for e in (bug, ours, bad_literal, extension_crash)] == [
        True, False, False, True,
    ]  # fmt: skip
    token = current_request_id.set("req-7")
    try:
        assert masked(bug).formatted == {
            "message": "Internal error",
            "path": ["me"],
            "extensions": {"code": "INTERNAL_ERROR", "requestId": "req-7"},
        }
    finally:
        current_request_id.reset(token)
