"""The member view benchmark's lean HTTP/1.1 client (`bench/load.py`) against a scripted
server: keep-alive, chunked bodies, refusals, timeouts and the time limit. A failed request
is counted by its outcome, never raised."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from bench.load import NOT_RUN, Endpoint, classify, drive, prepare_post

OK_BODY = orjson.dumps({"data": {"me": {"id": "1"}}})


def fixed(body: bytes, status: str = "200 OK", extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def chunked(*parts: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    chunks = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts)
    return head + chunks + b"0\r\n\r\n"


@dataclass
class Scripted:
    """A server answering each request with `answer(n)` (n counts requests from 0); None
    means never answer."""

    answer: Callable[[int], bytes | None]
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                reply = self.answer(len(self.requests) - 1)
                if reply is None:  # until the client gives up and closes
                    await reader.read()
                    return
                writer.write(reply)
                await writer.drain()
                if b"connection: close" in reply.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def started(script: Scripted) -> tuple[asyncio.Server, Endpoint]:
    server = await asyncio.start_server(script.handle, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    return server, Endpoint("127.0.0.1", port, "/graphql")


async def run(
    script: Scripted, *, count: int | None, clients: int = 1, request_timeout: float = 5.0
) -> tuple[Scripted, dict[str, int], int]:
    server, endpoint = await started(script)
    try:
        request = prepare_post(endpoint, b'{"query":"{ me { id } }"}', {"Authorization": "x"})
        result = await drive(
            endpoint,
            [request],
            count=count,
            clients=clients,
            max_seconds=5,
            request_timeout=request_timeout,
        )
    finally:
        server.close()
    return script, dict(result.outcomes), result.sent


async def test_keep_alive_sends_every_request_over_one_connection_per_client() -> None:
    script, outcomes, sent = await run(Scripted(lambda n: fixed(OK_BODY)), count=10, clients=2)
    assert outcomes == {"ok": 10} and sent == 10
    assert script.connections == 2
    first = script.requests[0]
    assert first.startswith(b"POST /graphql HTTP/1.1\r\n")
    assert b"Content-Length: 25\r\n" in first and b"Authorization: x\r\n" in first
    assert first.endswith(b'\r\n\r\n{"query":"{ me { id } }"}')


async def test_a_chunked_body_is_read_whole() -> None:
    body = OK_BODY
    _, outcomes, _ = await run(Scripted(lambda n: chunked(body[:7], body[7:])), count=3)
    assert outcomes == {"ok": 3}


async def test_a_closed_connection_is_reopened_for_the_next_request() -> None:
    script, outcomes, _ = await run(
        Scripted(lambda n: fixed(OK_BODY, extra="connection: close\r\n")), count=3
    )
    assert outcomes == {"ok": 3}
    assert script.connections == 3


async def test_a_body_without_length_on_a_kept_alive_connection_is_refused() -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n" + OK_BODY
    script, outcomes, _ = await run(Scripted(lambda n: answer), count=2)
    assert outcomes == {"protocol error": 2}
    assert script.connections == 2  # each failure drops its connection


async def test_failures_are_counted_by_kind() -> None:
    answers = [
        fixed(b"oops", "500 Internal Server Error"),
        fixed(
            orjson.dumps({"errors": [{"message": "x", "extensions": {"code": "UNAUTHENTICATED"}}]})
        ),
        fixed(orjson.dumps({"data": {"me": None}})),
        fixed(b"{not json"),
        b"SMTP ready\r\n\r\n",
        fixed(OK_BODY),
    ]
    _, outcomes, sent = await run(Scripted(lambda n: answers[n]), count=len(answers))
    assert sent == 6
    assert outcomes == {
        "HTTP 500": 1,
        "GraphQL errors: UNAUTHENTICATED": 1,
        "me is null": 1,
        "invalid JSON": 1,
        "protocol error": 1,
        "ok": 1,
    }


async def test_a_request_that_never_answers_times_out_and_the_next_one_goes_on() -> None:
    script, outcomes, _ = await run(
        Scripted(lambda n: None if n == 0 else fixed(OK_BODY)), count=2, request_timeout=0.3
    )
    assert outcomes == {"timeout": 1, "ok": 1}
    assert script.connections == 2


async def test_a_refused_connection_is_counted_not_raised() -> None:
    server, endpoint = await started(Scripted(lambda n: fixed(OK_BODY)))
    server.close()
    await server.wait_closed()
    request = prepare_post(endpoint, b"{}", {})
    result = await drive(endpoint, [request], count=3, clients=1, max_seconds=5, request_timeout=1)
    assert dict(result.outcomes) == {"ConnectionRefusedError": 3}
    assert result.errors == 3


async def test_the_time_limit_stops_a_phase_and_counts_what_did_not_run() -> None:
    def answer(n: int) -> bytes:
        return fixed(OK_BODY)

    server, endpoint = await started(Scripted(answer))
    try:
        request = prepare_post(endpoint, b"{}", {})
        result = await drive(
            endpoint, [request], count=10**9, clients=2, max_seconds=0.2, request_timeout=1
        )
        unbounded = await drive(
            endpoint, [request], count=None, clients=2, max_seconds=0.2, request_timeout=1
        )
    finally:
        server.close()
    assert result.outcomes["ok"] > 0
    assert result.outcomes[NOT_RUN] == 10**9 - result.sent
    assert 0.2 <= result.seconds < 2
    assert NOT_RUN not in unbounded.outcomes and unbounded.sent > 0


def test_classify_checks_the_named_field() -> None:
    assert classify(200, orjson.dumps({"data": {"program": {"key": "x"}}}), "program") == "ok"
    assert classify(200, b"[]") == "invalid JSON"
