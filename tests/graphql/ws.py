"""Subscriptions over a real socket: the app served by uvicorn in the test's event loop
(so the test, the app and its database share one loop), and a small `graphql-transport-ws`
client on the `websockets` package."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("graphql-transport-ws")
TIMEOUT = 5.0


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve an app whose lifespan already runs (a harness's); yields its ws:// URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"ws://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await task
        sock.close()


class GraphQLWs:
    """One `graphql-transport-ws` connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send `connection_init`; the server's next message (`connection_ack`)."""
        await self.send({"type": "connection_init", "payload": payload or {}})
        return await self.receive()

    async def subscribe(
        self, op_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        payload = {"query": query, "variables": variables or {}}
        await self.send({"id": op_id, "type": "subscribe", "payload": payload})

    async def complete(self, op_id: str) -> None:
        await self.send({"id": op_id, "type": "complete"})

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, within: float = TIMEOUT) -> dict[str, Any]:
        """The next message other than a ping (answered), arriving `within` seconds."""
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), within)
            message: dict[str, Any] = json.loads(raw)
            if message.get("type") == "ping":
                await self.send({"type": "pong"})
                continue
            return message

    async def silent(self, seconds: float) -> bool:
        """Whether nothing arrives for `seconds`."""
        try:
            message = await self.receive(within=seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"expected nothing, got {message}")


@contextlib.asynccontextmanager
async def ws_client(url: str, token: str | None = None) -> AsyncIterator[GraphQLWs]:
    """A connection; `token` goes in the upgrade's Authorization header (not the payload)."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with connect(url, subprotocols=[PROTOCOL], additional_headers=headers) as ws:
        yield GraphQLWs(ws)
