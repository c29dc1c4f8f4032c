"""The signing keys of an identity provider, fetched from its JWKS URL and cached.

Every request carries a token, and a token may name any `kid`, so the cache guards the
identity provider (and the gateway's latency) from the tokens it is shown:

- fetched through the shared HTTP client with an explicit timeout, lazily, then kept for the
  response's `Cache-Control: max-age`, bounded to [refresh interval, `max_age`] (no max-age:
  `max_age`; `no-cache`/`no-store`: the refresh interval);
- an unknown `kid` (a rotation) or an expired set fetches again, but at most one fetch is
  attempted per refresh interval, whether it succeeded or not: a flood of random `kid`s
  costs one fetch per interval, and a JWKS that is down is not hammered;
- concurrent callers share the one fetch in flight;
- a failed fetch keeps the keys already held: a rotation is late rather than every token
  refused; with no keys ever fetched, `JwksUnavailable`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.exceptions import UnsupportedAlgorithm

log = logging.getLogger("patron.auth")


class JwksUnavailable(Exception):
    """No signing keys are held: the JWKS has not been fetched successfully yet."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    algorithm: str | None  # the JWK's own `alg`, when it names one: the only one it may verify
    key: Any  # a `cryptography` key object; `key_fits` decides what it may verify


class JwksCache:
    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        timeout: float,
        refresh_interval: float = 30.0,
        max_age: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._http = http
        self._timeout = httpx.Timeout(timeout)
        self._refresh_interval = refresh_interval
        self._max_age = max(max_age, refresh_interval)
        self._clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._held = False  # a fetch has succeeded at least once
        self._expires_at = 0.0
        self._last_attempt: float | None = None
        self._inflight: asyncio.Task[None] | None = None

    async def get(self, kid: str) -> SigningKey | None:
        """The key named `kid`, or None when the JWK set does not hold it (after a fetch, when
        one is allowed). Raises JwksUnavailable when no key set has ever been fetched."""
        if (kid not in self._keys or self._clock() >= self._expires_at) and self._may_fetch():
            await self._refresh()
        if not self._held:
            raise JwksUnavailable
        return self._keys.get(kid)

    def _may_fetch(self) -> bool:
        if self._inflight is not None or self._last_attempt is None:
            return True
        return self._clock() - self._last_attempt >= self._refresh_interval

    async def _refresh(self) -> None:
        if self._inflight is None:
            self._last_attempt = self._clock()
            self._inflight = asyncio.create_task(self._fetch(), name="jwks-fetch")
        # Shielded: a caller that gives up (its client left) does not cancel the others' fetch.
        await asyncio.shield(self._inflight)

    async def _fetch(self) -> None:
        try:
            response = await self._http.get(self.url, timeout=self._timeout)
            response.raise_for_status()
            keys = parse_jwks(response.json())
            if not keys:
                raise ValueError("no usable signing keys in the set")
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            log.warning(
                "JWKS fetch from %s failed (%s); keeping the %d keys held",
                self.url,
                type(exc).__name__ if isinstance(exc, httpx.HTTPError) else exc,
                len(self._keys),
            )
            return
        except Exception:
            # Shared by every waiting request: anything unforeseen is a failed fetch (a 401
            # saying the keys are unavailable), never a 500 for all of them.
            log.exception(
                "JWKS fetch from %s failed; keeping the %d keys held", self.url, len(self._keys)
            )
            return
        finally:
            self._inflight = None
        self._keys = keys
        self._held = True
        lifetime = cache_lifetime(
            response.headers.get("cache-control"), self._refresh_interval, self._max_age
        )
        self._expires_at = self._clock() + lifetime


def parse_jwks(document: object) -> dict[str, SigningKey]:
    """The verification keys of a JWK set by `kid`. Entries that cannot verify a token are
    left out: no `kid`, `use` other than `sig`, a symmetric (`oct`) key, an `alg` or key type
    PyJWT does not know, malformed numbers. The first of two entries with one `kid` wins.
    Raises ValueError when the document is not a JWK set at all."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("not a JWK set (no 'keys' list)")
    keys: dict[str, SigningKey] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        kid, alg = entry.get("kid"), entry.get("alg")
        if not isinstance(kid, str) or not kid or kid in keys:
            continue
        if entry.get("use", "sig") != "sig" or entry.get("kty") == "oct":
            continue
        if alg is not None and not isinstance(alg, str):
            continue
        try:
            key = jwt.PyJWK(entry).key
        except (jwt.PyJWTError, ValueError, TypeError, KeyError, UnsupportedAlgorithm):
            log.warning("JWKS key %r skipped: not a usable verification key", kid)
            continue
        keys[kid] = SigningKey(kid, alg, key)
    return keys


def cache_lifetime(cache_control: str | None, floor: float, ceiling: float) -> float:
    """Seconds to keep a JWK set: its `max-age` within [floor, ceiling]; `no-cache` or
    `no-store`: the floor; no usable `max-age`: the ceiling."""
    directives: dict[str, str] = {}
    for part in (cache_control or "").split(","):
        name, _, value = part.strip().partition("=")
        directives[name.strip().lower()] = value.strip().strip('"')
    if "no-store" in directives or "no-cache" in directives:
        return floor
    max_age = directives.get("max-age", "")
    if not (max_age.isascii() and max_age.isdigit()):
        return ceiling
    return min(max(float(max_age), floor), ceiling)
