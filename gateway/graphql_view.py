"""strawberry's ASGI GraphQL view, with Patron's context and its own GraphiQL page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from gateway.graphiql import GRAPHIQL_HEADERS, graphiql_html
from loyalty.access import Viewer
from resolvers.context import Context


class PatronGraphQL(GraphQL[Context, None]):
    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        gateway = request.app.state.gateway
        viewer = request.scope.get("state", {}).get("viewer") or Viewer.anonymous()
        return Context.build(viewer, gateway.services, request, response)

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(graphiql_html(), headers=GRAPHIQL_HEADERS)


__all__ = ["PatronGraphQL"]
