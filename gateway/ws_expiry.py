"""A WebSocket connection lives no longer than the token that authenticated it.

A subscription may run for hours while its token was good for minutes, so a connection is
given a deadline: the moment the verifier would stop accepting its token (`exp` plus the
leeway). `GraphQLEndpoint` arms it from the upgrade's Authorization header; `on_ws_connect`
from the `connection_init` payload's token. At the deadline the connection is closed with
**4401 "Token expired"** (graphql-transport-ws's Unauthorized: the client must reconnect
with a fresh token, as its protocol offers no way to re-authenticate an open connection).

It works below strawberry, on the ASGI messages, so it holds for either subscription
protocol: at the deadline it sends the close frame itself and tells the application that
the client has left, so strawberry cancels every operation (and its broker subscription)
just as on a disconnect; anything the application still sends is dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, MutableMapping
from typing import Any

from starlette.types import Message, Receive, Send

EXPIRED_CODE = 4401
EXPIRED_REASON = "Token expired"
_SCOPE_KEY = "connection_deadline"


class ConnectionDeadline:
    def __init__(
        self, receive: Receive, send: Send, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._receive = receive
        self._send = send
        self._clock = clock
        self._expired = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._expiry: asyncio.Future[Any] | None = None
        self._pending: asyncio.Future[Message] | None = None
        self._close_sent = False
        self.expired = False  # closed at the deadline

    def arm(self, valid_until: float | None) -> None:
        """Close the connection at `valid_until` (UNIX time; at once if past; None: never)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if valid_until is not None:
            delay = max(0.0, valid_until - self._clock())
            self._timer = asyncio.get_running_loop().call_later(delay, self._expired.set)

    async def receive(self) -> Message:
        """The client's next message, or a disconnect once the deadline has passed."""
        if not self.expired:
            if self._pending is None:
                self._pending = asyncio.ensure_future(self._receive())
            if self._expiry is None:
                self._expiry = asyncio.ensure_future(self._expired.wait())
            await asyncio.wait((self._pending, self._expiry), return_when=asyncio.FIRST_COMPLETED)
            if not self._expired.is_set():
                message, self._pending = self._pending.result(), None
                return message
            await self._expire()
        return {"type": "websocket.disconnect", "code": EXPIRED_CODE, "reason": EXPIRED_REASON}

    async def send(self, message: Message) -> None:
        if self.expired:
            return  # the connection is closed; the application learns it on its next receive
        if message["type"] == "websocket.close":
            self._close_sent = True
        await self._send(message)

    async def _expire(self) -> None:
        self.expired = True
        if not self._close_sent:
            self._close_sent = True
            await self._send(
                {"type": "websocket.close", "code": EXPIRED_CODE, "reason": EXPIRED_REASON}
            )

    def close(self) -> None:
        """The connection is over: stop the timer and the waits it started."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in (self._pending, self._expiry):
            if task is not None:
                task.cancel()
        self._pending = self._expiry = None

    def attach(self, scope: MutableMapping[str, Any]) -> None:
        """Make this deadline findable from the connection's scope (`deadline_of`)."""
        scope.setdefault("state", {})[_SCOPE_KEY] = self


def deadline_of(scope: MutableMapping[str, Any]) -> ConnectionDeadline | None:
    found = scope.get("state", {}).get(_SCOPE_KEY)
    return found if isinstance(found, ConnectionDeadline) else None
