"""A lean load generator: prepared HTTP/1.1 POSTs over keep-alive connections, on asyncio.

The benchmark's client shares a small machine with the server and the fakes, so every
millisecond of CPU it spends per request is taken from what it measures: a general client
(httpx) costs about 2 ms per request, this one a fraction of that. It does only what the
member view needs:

- one connection per virtual client, opened before the clock starts and kept alive; after
  any failure it is closed and reopened for the next request (the stream's state is then
  unknown), and that reconnection counts in the next request's latency;
- requests are bytes prepared once (`prepare_post`), with a Content-Length body;
- responses are read by Content-Length or chunked transfer encoding (or to the end of the
  stream when the server closes it); anything else is refused as a `ProtocolError`;
- each request has a timeout; the status line and the JSON body are checked (`classify`):
  an outcome other than "ok" is counted, never raised.

A phase is bounded by a request count (`requests`, or None: until the time limit) and by
`max_seconds`: no request starts after the limit, and one in flight then ends within its
timeout. Requests not started because of the limit are counted as "not run (time limit)".
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import orjson

MAX_BODY_BYTES = 16 * 1024 * 1024
NOT_RUN = "not run (time limit)"
OK = "ok"


class ProtocolError(Exception):
    """A response this client does not read (or not an HTTP/1.x response at all)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    path: str


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    keep_alive: bool


@dataclass
class LoadResult:
    """What a phase did: its wall time, each finished request's latency (failures too) and
    the outcome counts (ok, HTTP status, GraphQL error codes, exception names, not run)."""

    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def sent(self) -> int:
        return len(self.latencies_ms)

    @property
    def errors(self) -> int:
        """Requests sent whose outcome was anything but ok."""
        return self.sent - self.outcomes[OK]


def prepare_post(endpoint: Endpoint, body: bytes, headers: Mapping[str, str]) -> bytes:
    """The whole request, once: the load loop only writes these bytes."""
    lines = [
        f"POST {endpoint.path} HTTP/1.1",
        f"Host: {endpoint.host}:{endpoint.port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --- reading a response -------------------------------------------------------------------
async def read_response(reader: asyncio.StreamReader) -> Response:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or not code.isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    status = int(code)
    length: int | None = None
    chunked = False
    keep_alive = version == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            token = value.strip().lower()
            keep_alive = token == b"keep-alive" or (keep_alive and token != b"close")
    if status < 200 or status in (204, 304):
        return Response(status, b"", keep_alive)
    if chunked:
        return Response(status, await _read_chunked(reader), keep_alive)
    if length is not None:
        if length > MAX_BODY_BYTES:
            raise ProtocolError(f"a body of {length} bytes")
        return Response(status, await reader.readexactly(length), keep_alive)
    if not keep_alive:
        return Response(status, await reader.read(MAX_BODY_BYTES), False)
    raise ProtocolError("no Content-Length and not chunked on a kept-alive connection")


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    received = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size line {size_line[:40]!r}") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, if any
                pass
            return b"".join(chunks)
        received += size
        if received > MAX_BODY_BYTES:
            raise ProtocolError(f"a chunked body over {MAX_BODY_BYTES} bytes")
        chunks.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise ProtocolError("a chunk not followed by CRLF")


def classify(status: int, body: bytes, field_name: str = "me") -> str:
    """The outcome of a response: "ok" for a 200 whose JSON has no `errors` and a non-null
    `data.<field_name>`, else a short reason that groups like failures in the report."""
    if status != 200:
        return f"HTTP {status}"
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "invalid JSON"
    if not isinstance(document, dict):
        return "invalid JSON"
    errors = document.get("errors")
    if errors:
        codes = sorted(
            {
                str((e.get("extensions") or {}).get("code", "error"))
                if isinstance(e, dict)
                else "error"
                for e in errors
            }
        )
        return "GraphQL errors: " + ",".join(codes)
    data = document.get("data")
    if not isinstance(data, dict) or not data.get(field_name):
        return f"{field_name} is null"
    return OK


# --- a connection -------------------------------------------------------------------------
class Connection:
    """One virtual client's keep-alive connection, (re)opened on demand."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self.endpoint.host, self.endpoint.port
        )

    async def exchange(self, request: bytes) -> Response:
        if self._writer is None or self._reader is None:
            await self.open()
        assert self._writer is not None and self._reader is not None
        self._writer.write(request)
        await self._writer.drain()
        response = await read_response(self._reader)
        if not response.keep_alive:
            self.close()
        return response

    def close(self) -> None:
        """Close without waiting for the peer: the next request opens a new connection."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def request_once(connection: Connection, request: bytes, seconds: float) -> str:
    """One request's outcome; a failure closes the connection and is named, never raised."""
    try:
        async with asyncio.timeout(seconds):
            response = await connection.exchange(request)
    except TimeoutError:
        connection.close()
        return "timeout"
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        connection.close()
        return type(exc).__name__
    except ProtocolError:
        connection.close()
        return "protocol error"
    except ValueError:  # a header value that is not a number
        connection.close()
        return "protocol error"
    return classify(response.status, response.body)


# --- a phase ------------------------------------------------------------------------------
async def drive(
    endpoint: Endpoint,
    requests: Sequence[bytes],
    *,
    count: int | None,
    clients: int,
    max_seconds: float,
    request_timeout: float,
    result: LoadResult | None = None,
) -> LoadResult:
    """`clients` virtual clients send `requests` in turn (request i is `requests[i % n]`)
    until `count` are sent (None: no count) or `max_seconds` have passed. `result`, when
    given, is filled as requests finish (a soak reports progress from it)."""
    connections = [Connection(endpoint) for _ in range(clients)]
    # Opened before the clock starts; one that fails is opened again by its first request.
    await asyncio.gather(*(c.open() for c in connections), return_exceptions=True)
    tickets: Iterator[int] = iter(range(count)) if count is not None else itertools.count()
    result = result if result is not None else LoadResult(seconds=0.0)
    began = time.perf_counter()
    deadline = began + max_seconds

    async def client(connection: Connection) -> None:
        for i in tickets:
            if time.perf_counter() >= deadline:
                return
            sent = time.perf_counter()
            outcome = await request_once(connection, requests[i % len(requests)], request_timeout)
            result.latencies_ms.append((time.perf_counter() - sent) * 1000)
            result.outcomes[outcome] += 1

    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        result.seconds = time.perf_counter() - began
        for connection in connections:
            connection.close()
    if count is not None and result.sent < count:
        result.outcomes[NOT_RUN] += count - result.sent
    return result
