"""strawberry's ASGI GraphQL view, with Patron's context, its own GraphiQL page, and GraphQL
over HTTP as the spec says (`gateway.graphql_http`, `gateway.csrf`).

HTTP: `admit` checks the request (method, Accept, CSRF) before strawberry looks at it;
`parse_http_body` reads the parameters (Content-Type, JSON, types); `execute_single` runs
queries by GET and queries and mutations by POST; `process_result` marks a request error
(no `data`, a code on each error); `__call__` gives the answer its media type and status,
and turns every refusal into a GraphQL error body. GraphiQL (dev) is served as strawberry
decides: a GET without a query from a browser.

WebSocket authentication: browsers cannot set headers on a WebSocket upgrade, so GraphiQL
and Apollo clients send the token in the `connection_init` payload instead. When the upgrade
carried no Authorization header (`GraphQLEndpoint` verified it if it did), `on_ws_connect`
verifies the payload's token with the same verifier and makes it the connection's viewer;
an untrustworthy token refuses the connection (closed with 4403, as graphql-transport-ws
asks). Either way the connection is closed with 4401 when that token expires
(`gateway.ws_expiry`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.unset import UnsetType

from gateway import graphql_http as protocol
from gateway.auth import AuthError
from gateway.csrf import require_preflight
from gateway.graphiql import GRAPHIQL_HEADERS, graphiql_html
from gateway.masking import masked_errors
from gateway.ws_expiry import deadline_of
from loyalty.access import Viewer
from resolvers.context import Context

if TYPE_CHECKING:
    from gateway.app import Gateway  # app.py imports this module

_EXCHANGE = "graphql_http"  # the request's protocol.Exchange, in scope["state"]


class PatronGraphQL(GraphQL[Context, None]):
    """`mask_errors`: production; an unexpected error that escaped the schema's masking (an
    extension's own failure ends the operation before it) is masked here too."""

    def __init__(self, *args: Any, mask_errors: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mask_errors = mask_errors

    # orjson: a member view's answer encodes in a tenth of the time the json module takes;
    # its JSONDecodeError is a ValueError, as invalid UTF-8 is (protocol.json_body).
    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    # --- HTTP ---------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            self.admit(request)
            response = await self.run(request)
        except HTTPException as exc:
            response = refusal_response(protocol.Refusal.of(exc), exchange_of(request))
        else:
            present(response, exchange_of(request))
        await response(scope, receive, send)

    def admit(self, request: Request) -> None:
        """Method, Accept and CSRF, before strawberry reads anything. GraphiQL's page (a GET
        without a query from a browser) is strawberry's to serve, or to refuse in prod."""
        protocol.require_method(request.method)
        if self.should_render_graphql_ide(self.request_adapter_class(request)):
            return
        exchange = protocol.Exchange(protocol.response_media_type(request.headers.get("accept")))
        request.scope.setdefault("state", {})[_EXCHANGE] = exchange
        require_preflight(request.headers)

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        if request.method == "GET":
            items = parse_qsl(urlsplit(request.url).query, keep_blank_values=True)
            return protocol.request_data(protocol.query_string_params(items, self.decode_json))
        protocol.require_json_content_type(request.content_type)
        body = await self.read_body(request)
        return protocol.request_data(protocol.json_body(body, self.decode_json))

    async def read_body(self, request: AsyncHTTPRequestAdapter) -> bytes:
        """The raw body of a POST (one place to bound its size). A client gone before its
        body was complete gets a 400 it will not read, instead of a 500 in the log."""
        try:
            return await request.get_body()
        except ClientDisconnect as exc:
            raise protocol.Refusal(
                400, protocol.BAD_REQUEST, "the client left before the body was complete"
            ) from exc

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        method = request_adapter.method
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=protocol.operation_types(method),
                operation_extensions=request_data.extensions,
            )
        except InvalidOperationTypeError as exc:
            raise protocol.operation_refusal(exc.operation_type, method) from exc
        except CannotGetOperationTypeError as exc:
            return protocol.unresolved_operation(exc.operation_name)
        except MissingQueryError as exc:
            raise protocol.missing_query() from exc

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        if self.mask_errors and result.errors:
            result.errors = masked_errors(result.errors)
        response = process_result(result)
        if protocol.is_request_error(result):
            exchange_of(request).request_error = True
            response.pop("data", None)  # the spec: a request error has no data entry
            response["errors"] = [
                _with_code(formatted, protocol.request_error_code(error, result))
                for formatted, error in zip(
                    response["errors"] or [], result.errors or [], strict=True
                )
            ]
        return response

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        gateway = request.app.state.gateway
        viewer = request.scope.get("state", {}).get("viewer") or Viewer.anonymous()
        return Context.build(viewer, gateway.services, request, response)

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(graphiql_html(), headers=GRAPHIQL_HEADERS)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        websocket = context.request
        if not isinstance(websocket, WebSocket) or websocket.headers.get("authorization"):
            return UnsetType()  # the upgrade's own header decided the viewer
        try:
            authorization = connection_authorization(context.connection_params)
            if authorization is not None:
                gateway: Gateway = websocket.app.state.gateway
                identity = await gateway.authenticate(authorization)
                context.viewer = identity.viewer
                deadline = deadline_of(websocket.scope)
                if deadline is not None:
                    deadline.arm(identity.valid_until)
        except AuthError as exc:
            raise ConnectionRejectionError({"message": str(exc)}) from exc
        return UnsetType()  # acknowledge, with no payload


def exchange_of(request: Request) -> protocol.Exchange:
    """The request's exchange (the negotiated media type; `application/json` before or
    without negotiation)."""
    state = request.scope.setdefault("state", {})
    exchange = state.get(_EXCHANGE)
    if not isinstance(exchange, protocol.Exchange):
        exchange = state[_EXCHANGE] = protocol.Exchange()
    return exchange


def present(response: Response, exchange: protocol.Exchange) -> None:
    """A GraphQL answer in the negotiated media type, 400 for a request error under
    application/graphql-response+json. (GraphiQL's page is left as it is.)"""
    if response.media_type != protocol.APPLICATION_JSON:
        return
    response.headers["content-type"] = exchange.content_type
    if exchange.status() != 200:
        response.status_code = exchange.status()


def refusal_response(refusal: protocol.Refusal, exchange: protocol.Exchange) -> Response:
    """A refusal as a GraphQL response: `{"errors": [{"message", "extensions": {"code"}}]}`,
    in the negotiated media type (application/json when Accept was refused)."""
    return JSONResponse(
        protocol.error_body(refusal.reason, refusal.code),
        status_code=refusal.status_code,
        headers={**refusal.headers, "content-type": exchange.content_type},
    )


def _with_code(formatted: object, code: str) -> object:
    if not isinstance(formatted, Mapping):
        return formatted
    extensions = dict(formatted.get("extensions") or {})
    extensions.setdefault("code", code)
    return {**formatted, "extensions": extensions}


def connection_authorization(params: Mapping[str, Any] | None) -> str | None:
    """The `Authorization` value of a `connection_init` payload: `Authorization` or
    `authorization` at the top (GraphiQL sends its headers there), or inside `headers`
    (Apollo's usual shape). None when there is none; AuthError when it is not a string."""
    if not params:
        return None
    headers = params.get("headers")
    for source in (params, headers if isinstance(headers, Mapping) else {}):
        for key in ("Authorization", "authorization"):
            value = source.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise AuthError("the Authorization connection parameter must be a string")
            return value
    return None


__all__ = [
    "PatronGraphQL",
    "connection_authorization",
    "exchange_of",
    "present",
    "refusal_response",
]
