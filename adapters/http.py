"""One policy for every call to an upstream system.

Every adapter talks to its vendor through an `Upstream`: the shared `httpx.AsyncClient`
(made once, in the gateway's lifespan), a base URL that may carry a path prefix, and an
`UpstreamPolicy` (one per upstream, from the settings):

- explicit connect and read timeouts, and a bound on each attempt as a whole (connect +
  read timeout): httpx's read timeout is per socket read, so a server that dribbles a byte
  at a time would never trip it;
- a deadline per GraphQL request (`deadline()`, a context variable the gateway sets around
  one HTTP request): each attempt's timeouts are cut to the time left, no retry or back-off
  starts that cannot finish before it, and once it has passed a call fails at once;
- retries with exponential backoff and full jitter, for idempotent reads only
  (GET/HEAD, or a POST the adapter marks as a read, like Amplience's `/content/fetch`), and
  for writes the adapter marks idempotent (Segment's batch deduplicates on `messageId`);
- `Retry-After` honoured on 429 and 503 (not waited for beyond `max_retry_after` or the
  deadline: the error is then returned at once);
- single-flight: identical reads in flight at the same time (method, full URL, headers with
  the credentials, body, auth) share one HTTP call and its outcome; writes never do;
- a circuit breaker per upstream: after `breaker_failures` consecutive failures it opens and
  fails fast for `breaker_reset_after` seconds, then lets one probe through (half-open);
  a successful probe closes it, a failed one opens it again.

Transport failures, timeouts and 5xx become `loyalty.errors.UpstreamError`s; other 4xx
replies are returned for the adapter to interpret (404 is "not found", not a failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import enum
import functools
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from loyalty.errors import UpstreamError, UpstreamRateLimited, UpstreamTimeout, UpstreamUnavailable

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A retry is not started with less time than this left before the deadline (after its
# back-off): no upstream answers usefully in less, and the caller is better served at once.
MIN_ATTEMPT_TIME = 0.05  # seconds

T = TypeVar("T")


# --- the request deadline -----------------------------------------------------------------
# The clock time (of the `clock` the deadline was set with; `time.monotonic` in the gateway)
# after which no upstream work is done for the current request. A context variable, so it
# follows the request into the tasks it starts (DataLoader batches, gathers) and nowhere else.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "patron_upstream_deadline", default=None
)


@contextlib.contextmanager
def deadline(seconds: float, *, clock: Callable[[], float] = time.monotonic) -> Iterator[float]:
    """Bound the upstream calls made in this context to `seconds` from now.

    Nested, the earlier deadline wins: an inner block can shorten the budget, never extend
    it. Yields the deadline as a clock time.
    """
    at = clock() + seconds
    outer = _DEADLINE.get()
    if outer is not None:
        at = min(at, outer)
    token = _DEADLINE.set(at)
    try:
        yield at
    finally:
        _DEADLINE.reset(token)


def current_deadline() -> float | None:
    """The deadline of the current context (a clock time), or None when there is none."""
    return _DEADLINE.get()


def without_deadline() -> contextvars.Context:
    """A copy of the current context without the request deadline.

    `asyncio.create_task` copies the context, so a task started inside a request would inherit
    its deadline and fail once the request is answered. Work that outlives the request (a
    cache refresh in the background) runs in this context instead.
    """
    context = contextvars.copy_context()
    context.run(_DEADLINE.set, None)
    return context


def spawn_detached(coro: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
    """`asyncio.create_task(coro)` in a context without the request deadline."""
    return asyncio.create_task(coro, name=name, context=without_deadline())


# --- policy and breaker -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UpstreamPolicy:
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    retries: int = 2
    backoff_base: float = 0.05
    backoff_max: float = 1.0
    max_retry_after: float = 2.0
    breaker_failures: int = 5
    breaker_reset_after: float = 10.0

    @property
    def attempt_timeout(self) -> float:
        """The longest one attempt may take as a whole: connecting, sending, and reading the
        entire reply. A reply that takes longer (a slow drip) is a timeout."""
        return self.connect_timeout + self.read_timeout


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts consecutive failures of one upstream; fails fast while open.

    closed --(`threshold` consecutive failures)--> open --(`reset_after` s)--> half-open:
    one probe is let through; its success closes the breaker, its failure opens it again for
    another `reset_after`. A probe that ends with no verdict (cancelled) frees its place.
    """

    def __init__(
        self, failures: int, reset_after: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = failures
        self._reset_after = reset_after
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._reset_after:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """Whether an attempt may go now; in half-open, the one that may is the probe."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probe_in_flight = False

    def record_failure(self) -> None:
        self._probe_in_flight = False
        self._failures += 1
        if self._failures >= self._threshold or self._opened_at is not None:
            self._opened_at = self._clock()

    def release_probe(self) -> None:
        """The probe ended without a verdict (cancelled): the next caller may probe."""
        self._probe_in_flight = False


# --- the upstream -------------------------------------------------------------------------
class Upstream:
    """A named upstream system reached through the shared HTTP client and one policy."""

    def __init__(
        self,
        name: str,
        base_url: str,
        http: httpx.AsyncClient,
        policy: UpstreamPolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        """`clock` (monotonic) drives the breaker and must be the clock the request deadline
        is set with; `wall_clock` reads `Retry-After` dates; `sleep` and `jitter` are the
        back-off's. Tests inject all four."""
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.policy = policy or UpstreamPolicy()
        self.breaker = CircuitBreaker(
            self.policy.breaker_failures, self.policy.breaker_reset_after, clock
        )
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._jitter = jitter
        self._in_flight: dict[Hashable, asyncio.Task[httpx.Response]] = {}

    @property
    def breaker_state(self) -> BreakerState:
        """The circuit breaker's state now (for metrics and health pages)."""
        return self.breaker.state

    def url(self, path: str) -> str:
        """An absolute URL under the base URL, keeping any path prefix of the base."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        read: bool | None = None,
        idempotent: bool = False,
    ) -> httpx.Response:
        """Send a request under the policy.

        `read=True` marks a non-GET request as an idempotent read: retried, and shared with
        identical reads in flight. `idempotent=True` marks a write that is safe to repeat
        (it carries its own deduplication key): retried, never shared.
        Returns the response for 2xx-4xx (except 429); raises an `UpstreamError` otherwise.
        """
        left = self._time_left()
        if left is not None and left <= 0:
            raise UpstreamTimeout(self.name, "request deadline passed")
        is_read = read if read is not None else method.upper() in IDEMPOTENT_METHODS
        build = functools.partial(
            self.http.build_request,
            method,
            self.url(path),
            params=params,
            json=json,
            content=content,
            data=data,
            headers=headers,
        )
        if not is_read:
            return await self._send(build, auth, retryable=idempotent)
        key = _flight_key(build(), auth)
        flight = self._in_flight.get(key)
        if flight is None or flight.done():
            # The flight runs in its own task (a copy of this context: the first caller's
            # deadline bounds it), so that a caller who leaves never cancels it for the others.
            flight = asyncio.create_task(
                self._send(build, auth, retryable=True), name=f"{self.name} {method} {path}"
            )
            self._in_flight[key] = flight
            flight.add_done_callback(functools.partial(self._landed, key))
        try:
            async with asyncio.timeout(left):  # None: no deadline, no bound here
                return await asyncio.shield(flight)
        except TimeoutError:
            # Only this caller's deadline: the flight goes on for the others.
            raise UpstreamTimeout(self.name, "request deadline reached") from None

    def _landed(self, key: Hashable, flight: asyncio.Task[httpx.Response]) -> None:
        if self._in_flight.get(key) is flight:
            del self._in_flight[key]
        if not flight.cancelled():
            flight.exception()  # observed, even when every caller has left

    async def _send(
        self,
        build: Callable[..., httpx.Request],
        auth: httpx.Auth | tuple[str, str] | None,
        *,
        retryable: bool,
    ) -> httpx.Response:
        attempts = 1 + (self.policy.retries if retryable else 0)
        last: UpstreamError | None = None
        for attempt in range(attempts):
            left = self._time_left()
            if left is not None and left <= 0:
                raise last or UpstreamTimeout(self.name, "request deadline passed")
            probe = self.breaker.state is BreakerState.HALF_OPEN
            if not self.breaker.allow():
                raise UpstreamUnavailable(self.name, "circuit open")
            try:
                outcome = await self._attempt(build, auth, left)
            except BaseException:
                if probe:
                    self.breaker.release_probe()
                raise
            retry_after: float | None = None
            if isinstance(outcome, UpstreamError):
                # A timeout counts even when the deadline, not the policy, cut it: with a
                # read timeout longer than the deadline, a hung upstream would otherwise
                # never open its breaker, and every request would wait the whole deadline.
                self.breaker.record_failure()
                last = outcome
            elif outcome.status_code not in RETRYABLE_STATUS:
                self.breaker.record_success()
                return outcome
            else:
                retry_after = parse_retry_after(
                    outcome.headers.get("retry-after"), self._wall_clock()
                )
                if outcome.status_code == 429:
                    # The upstream is alive and asks us to slow down: not a breaker failure.
                    self.breaker.record_success()
                    last = UpstreamRateLimited(self.name, "rate limited", retry_after)
                else:
                    self.breaker.record_failure()
                    last = UpstreamUnavailable(self.name, f"HTTP {outcome.status_code}")
            if attempt + 1 == attempts:
                break
            if retry_after is not None and retry_after > self.policy.max_retry_after:
                break  # asked to wait longer than we would: fail now
            delay = retry_after if retry_after is not None else self._backoff(attempt)
            left = self._time_left()
            if left is not None and delay + MIN_ATTEMPT_TIME > left:
                break  # the retry could not finish before the request's deadline
            await self._sleep(delay)
        assert last is not None
        raise last

    async def _attempt(
        self,
        build: Callable[..., httpx.Request],
        auth: httpx.Auth | tuple[str, str] | None,
        left: float | None,
    ) -> httpx.Response | UpstreamError:
        """One HTTP exchange, body included, bounded as a whole; a failure is returned."""
        policy = self.policy
        connect, read = policy.connect_timeout, policy.read_timeout
        whole = policy.attempt_timeout
        if left is not None:
            connect, read, whole = min(connect, left), min(read, left), min(whole, left)
        request = build(timeout=httpx.Timeout(read, connect=connect, pool=connect))
        try:
            async with asyncio.timeout(whole):
                response = await self.http.send(
                    request,
                    auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
                    stream=True,
                )
                try:
                    await response.aread()
                finally:
                    await response.aclose()
        except TimeoutError:
            if left is not None and left < policy.attempt_timeout:
                return UpstreamTimeout(self.name, "request deadline reached")
            return UpstreamTimeout(self.name, f"no complete reply within {whole:g} s")
        except httpx.TimeoutException as exc:
            return UpstreamTimeout(self.name, f"timed out ({type(exc).__name__})")
        except httpx.TransportError as exc:
            return UpstreamUnavailable(self.name, f"unreachable ({type(exc).__name__})")
        return response

    def _time_left(self) -> float | None:
        at = _DEADLINE.get()
        return None if at is None else at - self._clock()

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.policy.backoff_max, self.policy.backoff_base * (2**attempt))
        return self._jitter(0, ceiling)

    def json(self, response: httpx.Response) -> Any:
        """The JSON body of a reply, or `UpstreamUnavailable` when it is not JSON."""
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamUnavailable(self.name, "malformed JSON in reply") from exc

    def unexpected(self, response: httpx.Response) -> UpstreamUnavailable:
        """The error for a reply the adapter did not expect (e.g. 400 on a read)."""
        return UpstreamUnavailable(self.name, f"unexpected HTTP {response.status_code}")


def _flight_key(request: httpx.Request, auth: httpx.Auth | tuple[str, str] | None) -> Hashable:
    """What makes two reads the same: method, full URL with its query, every header (the
    Authorization among them), the body and the auth credentials. An `httpx.Auth` object
    counts by identity, so reads with different credentials never share."""
    credentials: Hashable = auth if auth is None or isinstance(auth, tuple) else id(auth)
    headers = tuple(sorted((k.lower(), v) for k, v in request.headers.multi_items()))
    return (request.method, str(request.url), headers, request.content, credentials)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date).

    `now` is the wall-clock time (epoch seconds) an HTTP date is measured from."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
