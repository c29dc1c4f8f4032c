"""One policy for every call to an upstream system.

Every adapter talks to its vendor through an `Upstream`: the shared `httpx.AsyncClient`
(made once, in the gateway's lifespan), a base URL that may carry a path prefix, and an
`UpstreamPolicy`:

- explicit connect and read timeouts;
- retries with exponential backoff and full jitter, for idempotent reads only
  (GET/HEAD, or a POST the adapter marks as a read, like Amplience's `/content/fetch`);
- `Retry-After` honoured on 429 and 503 (capped by `max_retry_after`);
- a circuit breaker per upstream: after `breaker_failures` consecutive failures it opens and
  fails fast for `breaker_reset_after` seconds, then lets one probe through (half-open);
  a successful probe closes it.

Transport failures, timeouts and 5xx become `loyalty.errors.UpstreamError`s; other 4xx
replies are returned for the adapter to interpret (404 is "not found", not a failure).
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from loyalty.errors import UpstreamError, UpstreamRateLimited, UpstreamTimeout, UpstreamUnavailable

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts consecutive failures of one upstream; fails fast while open."""

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
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.policy = policy or UpstreamPolicy()
        self.breaker = CircuitBreaker(
            self.policy.breaker_failures, self.policy.breaker_reset_after, clock
        )
        self._sleep = sleep
        self._timeout = httpx.Timeout(
            self.policy.read_timeout,
            connect=self.policy.connect_timeout,
            pool=self.policy.connect_timeout,
        )

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
    ) -> httpx.Response:
        """Send a request under the policy.

        `read=True` marks a non-GET request as an idempotent read that may be retried.
        Returns the response for 2xx-4xx (except 429); raises an `UpstreamError` otherwise.
        """
        retryable = read if read is not None else method.upper() in IDEMPOTENT_METHODS
        attempts = 1 + (self.policy.retries if retryable else 0)
        last: UpstreamError | None = None
        for attempt in range(attempts):
            if not self.breaker.allow():
                raise UpstreamUnavailable(self.name, "circuit open")
            delay: float | None = None
            try:
                response = await self.http.request(
                    method,
                    self.url(path),
                    params=params,
                    json=json,
                    content=content,
                    data=data,
                    headers=headers,
                    auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
                    timeout=self._timeout,
                )
            except httpx.TimeoutException as exc:
                self.breaker.record_failure()
                last = UpstreamTimeout(self.name, f"timed out ({type(exc).__name__})")
            except httpx.TransportError as exc:
                self.breaker.record_failure()
                last = UpstreamUnavailable(self.name, f"unreachable ({type(exc).__name__})")
            else:
                if response.status_code not in RETRYABLE_STATUS:
                    self.breaker.record_success()
                    return response
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                if response.status_code == 429:
                    # The upstream is alive and asks us to slow down: not a breaker failure.
                    self.breaker.record_success()
                    last = UpstreamRateLimited(self.name, "rate limited", retry_after)
                else:
                    self.breaker.record_failure()
                    last = UpstreamUnavailable(self.name, f"HTTP {response.status_code}")
                if retry_after is not None:
                    if retry_after > self.policy.max_retry_after:
                        break
                    delay = retry_after
            if attempt + 1 < attempts:
                await self._sleep(delay if delay is not None else self._backoff(attempt))
        assert last is not None
        raise last

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.policy.backoff_max, self.policy.backoff_base * (2**attempt))
        return random.uniform(0, ceiling)

    def json(self, response: httpx.Response) -> Any:
        """The JSON body of a reply, or `UpstreamUnavailable` when it is not JSON."""
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamUnavailable(self.name, "malformed JSON in reply") from exc

    def unexpected(self, response: httpx.Response) -> UpstreamUnavailable:
        """The error for a reply the adapter did not expect (e.g. 400 on a read)."""
        return UpstreamUnavailable(self.name, f"unexpected HTTP {response.status_code}")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
