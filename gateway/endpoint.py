"""`/graphql`: the bearer token is checked, the request admitted (rate and size limits) and
handed to strawberry under the upstream deadline; a WebSocket gets its token's expiry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from adapters.http import deadline as upstream_deadline
from gateway.auth import AuthError
from gateway.cache_control import no_store_by_default
from gateway.graphql_view import PatronGraphQL
from gateway.ws_expiry import ConnectionDeadline
from loyalty.access import Viewer

if TYPE_CHECKING:
    from gateway.app import Gateway  # app.py imports this module

__all__ = ["GraphQLEndpoint", "admit", "unauthorized"]


class GraphQLEndpoint:
    """Authenticates the bearer token, then hands the request to strawberry. A token that
    cannot be trusted is a 401 with a GraphQL error body, before any execution. Every HTTP
    answer is `Cache-Control: private, no-store` unless it is a public one. A WebSocket
    connection gets a deadline: it is closed (4401) when its token expires.

    An HTTP request runs under the upstream deadline (`PATRON_REQUEST_DEADLINE`, from its
    arrival): all the upstream work it causes fits in it, so a slow upstream costs its own
    fields, not the answer. A WebSocket does not: its subscriptions live for hours.
    """

    def __init__(self, graphql: PatronGraphQL) -> None:
        self.graphql = graphql

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._serve(scope, receive, send)
            return
        send = no_store_by_default(send)  # public answers say so (gateway.cache_control)
        gateway: Gateway = scope["app"].state.gateway
        with upstream_deadline(gateway.settings.request_deadline):
            await self._serve(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway: Gateway = scope["app"].state.gateway
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        try:
            identity = await gateway.authenticate(authorization)
        except AuthError as exc:
            if scope["type"] == "websocket":
                # Before the upgrade is accepted: the client sees an HTTP 403.
                await send({"type": "websocket.close", "code": 4401, "reason": "Unauthorized"})
                return
            # A refused token counts against its address's quota.
            refusal = await gateway.rate_limit.refusal(scope, None)
            await (refusal or unauthorized(str(exc)))(scope, receive, send)
            return
        scope.setdefault("state", {})["viewer"] = identity.viewer
        if scope["type"] != "websocket":
            refused, receive = await admit(gateway, scope, receive, identity.viewer)
            if refused is not None:
                await refused(scope, receive, send)
                return
            await self.graphql(scope, receive, send)
            return
        deadline = ConnectionDeadline(receive, send)
        deadline.attach(scope)
        deadline.arm(identity.valid_until)
        try:
            await self.graphql(scope, deadline.receive, deadline.send)
        finally:
            deadline.close()


async def admit(
    gateway: Gateway, scope: Scope, receive: Receive, viewer: Viewer
) -> tuple[Response | None, Receive]:
    """An HTTP request's admission: within its caller's rate limit, then within the size
    limits (read no further than them). The refusal, or None and the `receive` to go on with
    (the body already read)."""
    refused = await gateway.rate_limit.refusal(scope, viewer)
    if refused is not None:
        return refused, receive
    return await gateway.request_size.bound(scope, receive)


def unauthorized(reason: str) -> JSONResponse:
    """The refusal of an untrustworthy token (RFC 6750 section 3): 401, a Bearer challenge
    whose `error_description` says why, and the same reason as a GraphQL error."""
    # A quoted-string holds printable ASCII but no quote or backslash (the reasons are fixed
    # texts; this keeps a future one from breaking the header).
    description = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in reason)
    return JSONResponse(
        {"errors": [{"message": reason, "extensions": {"code": "UNAUTHENTICATED"}}]},
        status_code=401,
        headers={
            "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'
        },
    )
