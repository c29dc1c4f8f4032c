"""strawberry's ASGI GraphQL view, with Patron's context and its own GraphiQL page.

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

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UnsetType

from gateway.auth import AuthError
from gateway.graphiql import GRAPHIQL_HEADERS, graphiql_html
from gateway.ws_expiry import deadline_of
from loyalty.access import Viewer
from resolvers.context import Context

if TYPE_CHECKING:
    from gateway.app import Gateway  # app.py imports this module


class PatronGraphQL(GraphQL[Context, None]):
    # orjson: a member view's answer encodes in a tenth of the time the json module takes;
    # its JSONDecodeError is json's, so a malformed body is still strawberry's 400.
    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

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


__all__ = ["PatronGraphQL", "connection_authorization"]
