"""The cache logic shared by every cached port: stale-while-revalidate, refresh ahead of
expiry, stale-if-error, and invalidation that reaches every replica.

Each entry is JSON `{"at": <when its fetch began, epoch seconds>, "value": <item or null>}`
(null is a cached "not found"), stored for `stale_ttl`. By age:

- younger than `fresh_ttl * (1 - REFRESH_AHEAD_FRACTION)`: served without an upstream call;
- in the last `REFRESH_AHEAD_FRACTION` of `fresh_ttl`: served, and refreshed in the
  background, so a key read steadily never goes stale;
- between `fresh_ttl` and `stale_ttl`: served at once and refreshed in the background when
  `serve_stale` (content, profiles); a miss otherwise (orders), but still the fallback if the
  upstream fails (stale-if-error);
- older: a miss.

One background refresh per key at a time (in this process); a failed refresh keeps the old
value. The misses of a batch go to the upstream in one call; if it fails with an
`UpstreamError`, the keys that still have a value within `stale_ttl` are served from it and
the error is raised only if some key has none.

Invalidation: `invalidate(scopes)` writes a marker `{"at": now}` per scope (a delivery key, a
user id, a customer id) next to the entries, in the same store, so with Redis every replica
sees it. An entry whose fetch began before its scope's marker is never served again, not even
stale: this drops the entries of a scope that cannot be deleted one by one (a customer's order
pages of every size) and the late write of a fetch that was already under way when the
invalidation came (whose `at` is its start). Markers are read with the entries, in the same
`get_many`. A marker lives as long as an entry it must hide could: `stale_ttl`, or only
`IN_FLIGHT_SECONDS` when the invalidation also deletes the entries themselves.

A `fresh_ttl` of 0 turns the cache off (every call goes to the upstream).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from adapters.cache.store import CacheStore
from adapters.http import spawn_detached
from loyalty.errors import UpstreamError

__all__ = ["IN_FLIGHT_SECONDS", "REFRESH_AHEAD_FRACTION", "SwrCache"]

log = logging.getLogger("patron.cache")

# The last fifth of an entry's fresh TTL: it is still served, and refreshed in the background.
REFRESH_AHEAD_FRACTION = 0.2
# Longer than any upstream fetch can take under the upstream policy (timeouts, retries,
# backoff): how long a marker must outlive entries that were deleted with it.
IN_FLIGHT_SECONDS = 300.0

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    at: float
    value: V | None


class SwrCache(Generic[K, V]):
    """Ids of type `K` (a delivery key, a user id, a page of a customer's orders) cached in a
    `CacheStore` under `key(id)`, invalidated per `scope(id)`."""

    def __init__(
        self,
        store: CacheStore,
        *,
        name: str,
        key: Callable[[K], str],
        scope: Callable[[K], str],
        marker: Callable[[str], str],
        encode: Callable[[V], Any],
        decode: Callable[[Any], V],
        fresh_ttl: float,
        stale_ttl: float,
        clock: Callable[[], float],
        serve_stale: bool = True,
    ) -> None:
        self.store = store
        self.name = name
        self.key = key
        self.scope = scope
        self.marker = marker
        self.encode = encode
        self.decode = decode
        self.fresh_ttl = fresh_ttl
        self.stale_ttl = max(stale_ttl, fresh_ttl)
        self.clock = clock
        self.serve_stale = serve_stale
        self.refreshing: set[str] = set()  # store keys with a background refresh under way
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self.fresh_ttl > 0

    async def get_many(
        self, ids: Sequence[K], fetch: Callable[[Sequence[K]], Awaitable[Mapping[K, V | None]]]
    ) -> dict[K, V | None]:
        """The value of each id, from the cache or from `fetch` (the upstream, in one call)."""
        distinct = list(dict.fromkeys(ids))
        if not self.enabled:
            return dict(await fetch(distinct))
        entries = await self._read(distinct)
        now = self.clock()
        refresh_from = self.fresh_ttl * (1 - REFRESH_AHEAD_FRACTION)
        result: dict[K, V | None] = {}
        to_refresh: list[K] = []
        missing: list[K] = []
        for id_ in distinct:
            entry = entries.get(id_)
            age = None if entry is None else now - entry.at
            if entry is None or age is None or age >= self.stale_ttl:
                missing.append(id_)
                continue
            if age >= self.fresh_ttl and not self.serve_stale:
                missing.append(id_)  # only served if the upstream fails
                continue
            result[id_] = entry.value
            if age >= refresh_from and self.key(id_) not in self.refreshing:
                to_refresh.append(id_)
        if to_refresh:
            self._refresh_in_background(to_refresh, fetch)
        if missing:
            try:
                fetched = await fetch(missing)
            except UpstreamError:
                stale = {i: entries[i] for i in missing if i in entries}
                fallback = {i: e.value for i, e in stale.items() if now - e.at < self.stale_ttl}
                if len(fallback) < len(missing):
                    raise
                log.warning("%s down: serving %d stale entries", self.name, len(fallback))
                result.update(fallback)
            else:
                got = {i: fetched.get(i) for i in missing}
                await self._write(got, now)
                result.update(got)
        return result

    async def invalidate(self, scopes: Sequence[str], *, delete: Sequence[K] = ()) -> None:
        """Never serve again what was fetched before now for these scopes (on every replica
        sharing the store); `delete` also removes these entries (their marker then only has
        to outlive the fetches under way)."""
        scopes = list(dict.fromkeys(scopes))
        if not scopes:
            return
        doc = json.dumps({"at": self.clock()}, separators=(",", ":")).encode()
        lifetime = IN_FLIGHT_SECONDS if delete else self.stale_ttl
        await self.store.set_many({self.marker(s): doc for s in scopes}, lifetime)
        if delete:
            await self.store.delete([self.key(i) for i in dict.fromkeys(delete)])

    async def drain(self) -> None:
        """Wait for the background refreshes under way (tests, shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    def _refresh_in_background(
        self, ids: list[K], fetch: Callable[[Sequence[K]], Awaitable[Mapping[K, V | None]]]
    ) -> None:
        keys = [self.key(i) for i in ids]
        self.refreshing.update(keys)
        # Not bound by the request's deadline: the refresh outlives the request that saw the
        # entry, and is bounded by the upstream policy's own timeouts.
        task = spawn_detached(self._refresh(ids, keys, fetch), name=f"{self.name}-cache-refresh")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _refresh(
        self,
        ids: list[K],
        keys: list[str],
        fetch: Callable[[Sequence[K]], Awaitable[Mapping[K, V | None]]],
    ) -> None:
        started = self.clock()  # the entry's `at`: an invalidation during the fetch wins
        try:
            fetched = await fetch(ids)
            await self._write({i: fetched.get(i) for i in ids}, started)
        except Exception as exc:  # the old value stays: served until it is too old
            log.warning("%s cache refresh failed, serving stale: %r", self.name, exc)
        finally:
            self.refreshing.difference_update(keys)

    async def _read(self, ids: Sequence[K]) -> dict[K, _Entry[V]]:
        """The entries of these ids, without those fetched before their scope's marker."""
        keys = {self.key(i): i for i in ids}
        scopes = {i: self.scope(i) for i in ids}
        markers = {self.marker(s): s for s in dict.fromkeys(scopes.values())}
        raw = await self.store.get_many([*keys, *markers])
        invalidated: dict[str, float] = {}
        for marker, scope in markers.items():
            if marker in raw:
                try:
                    invalidated[scope] = float(json.loads(raw[marker])["at"])
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("%s marker %s unreadable, ignored: %r", self.name, marker, exc)
        entries: dict[K, _Entry[V]] = {}
        for key, id_ in keys.items():
            data = raw.get(key)
            if data is None:
                continue
            try:
                doc = json.loads(data)
                value = None if doc["value"] is None else self.decode(doc["value"])
                entry = _Entry(float(doc["at"]), value)
            except (ValueError, KeyError, TypeError) as exc:  # an old or foreign format
                log.warning("%s cache entry %s unreadable, a miss: %r", self.name, key, exc)
                continue
            if entry.at < invalidated.get(scopes[id_], float("-inf")):
                continue  # fetched before an invalidation of its scope
            entries[id_] = entry
        return entries

    async def _write(self, values: Mapping[K, V | None], at: float) -> None:
        items = {
            self.key(i): json.dumps(
                {"at": at, "value": None if v is None else self.encode(v)}, separators=(",", ":")
            ).encode()
            for i, v in values.items()
        }
        await self.store.set_many(items, self.stale_ttl)
