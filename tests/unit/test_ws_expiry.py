"""`ConnectionDeadline` on fake ASGI channels: messages pass through until the deadline; at
the deadline the client gets close 4401 and the application a disconnect."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from gateway.ws_expiry import ConnectionDeadline, deadline_of

DISCONNECT = {"type": "websocket.disconnect", "code": 4401, "reason": "Token expired"}
CLOSE = {"type": "websocket.close", "code": 4401, "reason": "Token expired"}


class Channels:
    """The server side of one connection: what the client sends, what reaches it."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send(self, message: Any) -> None:
        self.sent.append(message)


@pytest.fixture
def channels() -> Channels:
    return Channels()


async def test_messages_pass_through_before_the_deadline(channels: Channels) -> None:
    deadline = ConnectionDeadline(channels.receive, channels.send)
    deadline.arm(time.time() + 60)
    channels.inbox.put_nowait({"type": "websocket.receive", "text": "hello"})
    assert await deadline.receive() == {"type": "websocket.receive", "text": "hello"}
    await deadline.send({"type": "websocket.send", "text": "hi"})
    assert channels.sent == [{"type": "websocket.send", "text": "hi"}]
    assert not deadline.expired
    deadline.close()


async def test_at_the_deadline_the_client_is_closed_and_the_app_told(channels: Channels) -> None:
    deadline = ConnectionDeadline(channels.receive, channels.send)
    deadline.arm(time.time() + 0.05)
    started = time.monotonic()
    assert await deadline.receive() == DISCONNECT  # while waiting for the client
    assert 0.04 <= time.monotonic() - started < 1.0
    assert channels.sent == [CLOSE]
    await deadline.send({"type": "websocket.send", "text": "late"})  # dropped
    assert await deadline.receive() == DISCONNECT
    assert channels.sent == [CLOSE]
    assert deadline.expired
    deadline.close()


async def test_a_deadline_already_past_closes_at_the_first_receive(channels: Channels) -> None:
    deadline = ConnectionDeadline(channels.receive, channels.send)
    deadline.arm(time.time() - 5)
    assert await asyncio.wait_for(deadline.receive(), 1.0) == DISCONNECT
    assert channels.sent == [CLOSE]


async def test_no_deadline_never_closes(channels: Channels) -> None:
    deadline = ConnectionDeadline(channels.receive, channels.send)
    deadline.arm(time.time() + 0.01)
    deadline.arm(None)  # re-armed with nothing: an anonymous connection
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(deadline.receive(), 0.1)
    assert channels.sent == []
    deadline.close()


async def test_rearming_moves_the_deadline(channels: Channels) -> None:
    deadline = ConnectionDeadline(channels.receive, channels.send)
    deadline.arm(time.time() + 60)
    deadline.arm(time.time() + 0.02)
    assert await asyncio.wait_for(deadline.receive(), 1.0) == DISCONNECT


async def test_a_connection_the_app_closed_is_not_closed_again(channels: Channels) -> None:
    deadline = ConnectionDeadline(channels.receive, channels.send)
    await deadline.send({"type": "websocket.close", "code": 4403, "reason": "Forbidden"})
    deadline.arm(time.time())
    assert await asyncio.wait_for(deadline.receive(), 1.0) == DISCONNECT
    assert channels.sent == [{"type": "websocket.close", "code": 4403, "reason": "Forbidden"}]


async def test_a_receive_cut_short_keeps_its_message(channels: Channels) -> None:
    """A receive the application abandons leaves the pending read for the next one."""
    deadline = ConnectionDeadline(channels.receive, channels.send)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(deadline.receive(), 0.02)
    channels.inbox.put_nowait({"type": "websocket.receive", "text": "kept"})
    assert await deadline.receive() == {"type": "websocket.receive", "text": "kept"}
    deadline.close()


async def test_close_stops_the_timer(channels: Channels) -> None:
    deadline = ConnectionDeadline(channels.receive, channels.send)
    deadline.arm(time.time() + 0.02)
    deadline.close()
    await asyncio.sleep(0.05)
    with pytest.raises(TimeoutError):  # nothing expired: it still waits for the client
        await asyncio.wait_for(deadline.receive(), 0.05)
    assert channels.sent == []
    assert not deadline.expired
    deadline.close()


def test_a_deadline_is_found_from_its_scope(channels: Channels) -> None:
    deadline = ConnectionDeadline(channels.receive, channels.send)
    scope: dict[str, Any] = {"type": "websocket"}
    assert deadline_of(scope) is None
    deadline.attach(scope)
    assert deadline_of(scope) is deadline
