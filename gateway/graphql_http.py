"""GraphQL over HTTP: what a request to `/graphql` must be, which media type answers it and
with which status (the GraphQL-over-HTTP spec, as the `graphql-http` audits check it).
Pure rules; `gateway.graphql_view.PatronGraphQL` applies them in this order:

1. Method: GET or POST, else 405 `METHOD_NOT_ALLOWED` with `Allow: GET, POST`.
2. `Accept`: `application/graphql-response+json` when the client names it with the highest
   q; `application/json` otherwise, and when there is no Accept header or only wildcards
   (`*/*`, `application/*`); 406 `NOT_ACCEPTABLE` when it allows neither.
3. CSRF (`gateway.csrf`): a GET or a POST of a "simple" content type must carry a preflight
   header, else 400 `CSRF_PREFLIGHT_REQUIRED`.
4. POST `Content-Type`: `application/json`, with `charset=utf-8` or no charset; anything
   else (none, form data, multipart, text) is 415 `UNSUPPORTED_MEDIA_TYPE`.
5. The body (POST: a JSON object; GET: the query string): not JSON, not UTF-8, an array (a
   batch), a repeated GET parameter, or parameters of the wrong type (`query` a string,
   `variables` and `extensions` objects or null, `operationName` a string or null) are 400
   `BAD_REQUEST`, and so is a request without a query.
6. The operation: a mutation by GET is 405 with `Allow: POST`; a subscription over HTTP is
   400 `OPERATION_NOT_SUPPORTED` (subscriptions are served over WebSocket).
7. The answer: a request error (nothing executed: the document does not parse or validate,
   the variables do not coerce, the operation cannot be chosen) has no `data` entry and is
   400 under `application/graphql-response+json`, 200 under `application/json`; a result
   whose execution began (`data` present, even null) is 200.

Every refusal has a GraphQL response body: `{"errors": [{"message", "extensions": {"code"}}]}`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

__all__ = [
    "APPLICATION_JSON",
    "GRAPHQL_RESPONSE_JSON",
    "HTTP_METHODS",
    "Exchange",
    "Refusal",
    "error_body",
    "is_request_error",
    "json_body",
    "media_type_essence",
    "operation_refusal",
    "operation_types",
    "query_string_params",
    "request_data",
    "request_error_code",
    "require_json_content_type",
    "require_method",
    "response_media_type",
    "response_status",
]

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"
# The Content-Type of each answer: JSON is UTF-8 by definition (RFC 8259 defines no charset
# parameter for application/json); the GraphQL-over-HTTP spec spells it for its own type.
CONTENT_TYPES = {
    GRAPHQL_RESPONSE_JSON: f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8",
    APPLICATION_JSON: APPLICATION_JSON,
}
HTTP_METHODS = ("GET", "POST")

# extensions.code of each refusal and request error: stable, documented in the README.
BAD_REQUEST = "BAD_REQUEST"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
OPERATION_NOT_SUPPORTED = "OPERATION_NOT_SUPPORTED"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"
OPERATION_RESOLUTION_FAILURE = "OPERATION_RESOLUTION_FAILURE"

_CODE_OF_STATUS = {
    400: BAD_REQUEST,
    404: "NOT_FOUND",
    405: METHOD_NOT_ALLOWED,
    406: NOT_ACCEPTABLE,
    413: "PAYLOAD_TOO_LARGE",
    415: UNSUPPORTED_MEDIA_TYPE,
}


class Refusal(HTTPException):
    """A request refused before anything executes: the status, a stable code and a message
    for the GraphQL error body, and headers (`Allow` of a 405)."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status, message)
        self.code = code
        self.headers = dict(headers or {})

    @classmethod
    def of(cls, exc: HTTPException) -> Refusal:
        """A refusal strawberry raised itself (a plain HTTPException), with our code."""
        if isinstance(exc, Refusal):
            return exc
        code = _CODE_OF_STATUS.get(exc.status_code, BAD_REQUEST)
        return cls(exc.status_code, code, exc.reason)


def error_body(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


@dataclass
class Exchange:
    """What the view learns about one HTTP request on its way: the media type negotiated
    for the answer, and whether the result was a request error (nothing executed)."""

    media_type: str = APPLICATION_JSON
    request_error: bool = False

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.media_type]

    def status(self) -> int:
        return response_status(self.media_type, request_error=self.request_error)


# --- 1. method ------------------------------------------------------------------------------
def require_method(method: str) -> None:
    if method not in HTTP_METHODS:
        raise Refusal(
            405,
            METHOD_NOT_ALLOWED,
            f"{method} is not allowed on /graphql: use GET (queries) or POST",
            {"Allow": ", ".join(HTTP_METHODS)},
        )


# --- 2. Accept --------------------------------------------------------------------------------
def response_media_type(accept: str | None) -> str:
    """The media type of the answer (see the module), or a 406 refusal."""
    if accept is None or not accept.strip():
        return APPLICATION_JSON
    ranges = list(_media_ranges(accept))
    graphql_q, named = _quality(ranges, GRAPHQL_RESPONSE_JSON)
    json_q, _ = _quality(ranges, APPLICATION_JSON)
    if graphql_q == json_q == 0:
        raise Refusal(
            406,
            NOT_ACCEPTABLE,
            f"the Accept header allows neither {GRAPHQL_RESPONSE_JSON} nor {APPLICATION_JSON}",
        )
    if graphql_q > json_q or (graphql_q == json_q and named):
        return GRAPHQL_RESPONSE_JSON
    return APPLICATION_JSON


def _media_ranges(accept: str) -> Iterable[tuple[str, float]]:
    """(`type/subtype` in lower case, q) of each well-formed range; malformed ones are
    skipped."""
    for element in accept.split(","):
        media, *parameters = element.split(";")
        media = media.strip().lower()
        if media.count("/") != 1 or not all(media.split("/")):
            continue
        q = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                q = _q_value(value.strip())
        if q >= 0:
            yield media, q


def _q_value(text: str) -> float:
    """A q value (RFC 9110: 0 to 1, three decimals at most); -1 when malformed."""
    try:
        q = float(text)
    except ValueError:
        return -1
    return q if 0 <= q <= 1 and len(text) <= 5 else -1


def _quality(ranges: Sequence[tuple[str, float]], media_type: str) -> tuple[float, bool]:
    """The q the most specific matching range gives `media_type` (exact over `type/*` over
    `*/*`), and whether that range names it exactly."""
    kind = media_type.split("/")[0]
    for pattern, exact in ((media_type, True), (f"{kind}/*", False), ("*/*", False)):
        matching = [q for media, q in ranges if media == pattern]
        if matching:
            return max(matching), exact
    return 0.0, False


# --- 4. Content-Type --------------------------------------------------------------------------
def media_type_essence(content_type: str) -> tuple[str, dict[str, str]]:
    """`type/subtype` in lower case and the parameters (names in lower case, values
    unquoted) of a Content-Type value."""
    essence, *parameters = content_type.split(";")
    params: dict[str, str] = {}
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return essence.strip().lower(), params


def require_json_content_type(content_type: str | None) -> None:
    """A POST body must be `application/json`, UTF-8 (the default, or named)."""
    if content_type is None:
        raise Refusal(
            415, UNSUPPORTED_MEDIA_TYPE, "a POST must have Content-Type: application/json"
        )
    essence, params = media_type_essence(content_type)
    if essence != APPLICATION_JSON:
        raise Refusal(
            415,
            UNSUPPORTED_MEDIA_TYPE,
            f"unsupported Content-Type {essence or '(empty)'!r}: send application/json",
        )
    if params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        raise Refusal(415, UNSUPPORTED_MEDIA_TYPE, "the request body must be UTF-8 (charset=utf-8)")


# --- 5. the body and its parameters -----------------------------------------------------------
Decoder = Callable[[bytes], object]


def json_body(body: bytes, decode: Decoder) -> Mapping[str, object]:
    """The JSON object of a POST body."""
    try:
        data = decode(body)
    except ValueError as exc:  # json's and orjson's JSONDecodeError, invalid UTF-8 too
        raise Refusal(
            400, BAD_REQUEST, "the request body is not valid JSON (UTF-8)" if body else
            "the request body is empty: send a JSON object with a query",
        ) from exc  # fmt: skip
    if isinstance(data, list):
        raise Refusal(
            400, BAD_REQUEST, "batched operations (a JSON array) are not supported: "
            "send one operation per request",
        )  # fmt: skip
    if not isinstance(data, dict):
        raise Refusal(400, BAD_REQUEST, "the request body must be a JSON object")
    return data


_PARAMETERS = ("query", "variables", "operationName", "extensions")
_JSON_PARAMETERS = ("variables", "extensions")


def query_string_params(items: Iterable[tuple[str, str]], decode: Decoder) -> dict[str, object]:
    """The parameters of a GET: each at most once; `variables` and `extensions` are JSON."""
    params: dict[str, object] = {}
    for name, value in items:
        if name not in _PARAMETERS:
            continue
        if name in params:
            raise Refusal(400, BAD_REQUEST, f"the parameter {name!r} is given more than once")
        if name in _JSON_PARAMETERS:
            try:
                params[name] = decode(value.encode())
            except ValueError as exc:
                raise Refusal(
                    400, BAD_REQUEST, f"the parameter {name!r} is not valid JSON"
                ) from exc
        else:
            params[name] = value
    return params


def request_data(params: Mapping[str, object]) -> GraphQLRequestData:
    """The GraphQL request, its parameters' types checked. A missing query is not refused
    here: a persisted document may stand for it (it is refused when nothing does)."""
    query = params.get("query")
    variables = params.get("variables")
    operation_name = params.get("operationName")
    extensions = params.get("extensions")
    if query is not None and not isinstance(query, str):
        raise _wrong_type("query", "a string")
    if variables is not None and not isinstance(variables, dict):
        raise _wrong_type("variables", "an object or null")
    if operation_name is not None and not isinstance(operation_name, str):
        raise _wrong_type("operationName", "a string or null")
    if extensions is not None and not isinstance(extensions, dict):
        raise _wrong_type("extensions", "an object or null")
    return GraphQLRequestData(
        query=query, variables=variables, operation_name=operation_name, extensions=extensions
    )


def _wrong_type(name: str, expected: str) -> Refusal:
    return Refusal(400, BAD_REQUEST, f"the parameter {name!r} must be {expected}")


def missing_query() -> Refusal:
    return Refusal(400, BAD_REQUEST, "no GraphQL query in the request (the 'query' parameter)")


# --- 6. the operation -------------------------------------------------------------------------
def operation_types(method: str) -> frozenset[OperationType]:
    """What each method may execute: queries by GET, queries and mutations by POST."""
    if method == "GET":
        return frozenset({OperationType.QUERY})
    return frozenset({OperationType.QUERY, OperationType.MUTATION})


def operation_refusal(operation_type: OperationType, method: str) -> Refusal:
    """The refusal of an operation its method may not execute."""
    if operation_type is OperationType.SUBSCRIPTION:
        return Refusal(
            400,
            OPERATION_NOT_SUPPORTED,
            "subscriptions are served over WebSocket (graphql-transport-ws) at /graphql, "
            "not over HTTP",
        )
    return Refusal(
        405, METHOD_NOT_ALLOWED, f"{operation_type.value}s are not allowed by {method}: use POST",
        {"Allow": "POST"},
    )  # fmt: skip


def unresolved_operation(operation_name: str | None) -> PreExecutionError:
    """The request error of a document whose operation cannot be chosen."""
    message = (
        f"Unknown operation named '{operation_name}'."
        if operation_name is not None
        else "The document has no operation to run."
    )
    error = GraphQLError(message, extensions={"code": OPERATION_RESOLUTION_FAILURE})
    return PreExecutionError(data=None, errors=[error])


# --- 7. the answer ----------------------------------------------------------------------------
def is_request_error(result: ExecutionResult) -> bool:
    """Nothing executed: no data and no error at a path (parse, validation, variables, an
    operation refused before it ran). A field error always has a path."""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)


def request_error_code(error: GraphQLError, result: ExecutionResult) -> str:
    """The code of an error of a request error: the document does not parse, does not
    validate (strawberry returns those before execution), or its variables do not coerce
    (graphql-core's execution refuses them before any field runs)."""
    if isinstance(error, GraphQLSyntaxError):
        return GRAPHQL_PARSE_FAILED
    if isinstance(result, PreExecutionError):
        return GRAPHQL_VALIDATION_FAILED
    return BAD_USER_INPUT


def response_status(media_type: str, *, request_error: bool) -> int:
    return 400 if request_error and media_type == GRAPHQL_RESPONSE_JSON else 200
