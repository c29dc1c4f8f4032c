"""Cached decorators of the content and profile ports (stale-while-revalidate,
stale-if-error). Carts, orders and the loyalty data are never cached.

Each entry is JSON `{"at": <fetched at, epoch seconds>, "value": <item or null>}`; null is a
cached "not found". An entry younger than `fresh_ttl` is served without calling the
upstream; one between `fresh_ttl` and `stale_ttl` is served at once and refreshed in the
background (one refresh per key at a time; a failed refresh keeps the old value, so a down
upstream is served stale); an older one is a miss. The misses of a batch go to the inner
port in one call; if it fails with an `UpstreamError`, the keys that still have a value
within `stale_ttl` are served from it and the error is raised only if some key has none.

Profile keys hold the CDP user id, so one member's profile is never served to another.
A `fresh_ttl` of 0 turns the cache off (every call goes to the inner port).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from adapters.cache.store import CacheStore
from adapters.http import spawn_detached
from loyalty.errors import UpstreamError
from loyalty.ports import ContentPort, ProfilePort
from loyalty.upstreams import ContentItem, ExternalId, Profile, TrackEvent

__all__ = ["CachedContent", "CachedProfiles", "content_key", "profile_key"]

log = logging.getLogger("patron.cache")

V = TypeVar("V")
Fetch = Callable[[Sequence[str]], Awaitable[Mapping[str, Any]]]


def content_key(delivery_key: str) -> str:
    return f"cms:key:{delivery_key}"


def profile_key(user_id: str) -> str:
    return f"cdp:profile:{user_id}"


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    at: float
    value: V | None


class _SwrCache(Generic[V]):
    """The cache logic shared by both ports: ids -> store keys, encoding, freshness."""

    def __init__(
        self,
        store: CacheStore,
        *,
        name: str,
        key: Callable[[str], str],
        encode: Callable[[V], Any],
        decode: Callable[[Any], V],
        fresh_ttl: float,
        stale_ttl: float,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.name = name
        self.key = key
        self.encode = encode
        self.decode = decode
        self.fresh_ttl = fresh_ttl
        self.stale_ttl = max(stale_ttl, fresh_ttl)
        self.clock = clock
        self.refreshing: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self.fresh_ttl > 0

    async def get_many(self, ids: Sequence[str], fetch: Fetch) -> dict[str, V | None]:
        distinct = list(dict.fromkeys(ids))
        if not self.enabled:
            return dict(await fetch(distinct))
        entries = await self._read(distinct)
        now = self.clock()
        result: dict[str, V | None] = {}
        to_refresh: list[str] = []
        missing: list[str] = []
        for id_ in distinct:
            entry = entries.get(id_)
            age = None if entry is None else now - entry.at
            if entry is None or age is None or age >= self.stale_ttl:
                missing.append(id_)
                continue
            result[id_] = entry.value
            if age >= self.fresh_ttl and id_ not in self.refreshing:
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

    async def invalidate(self, ids: Sequence[str]) -> None:
        await self.store.delete([self.key(i) for i in dict.fromkeys(ids)])

    async def drain(self) -> None:
        """Wait for the background refreshes under way (tests, shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    def _refresh_in_background(self, ids: list[str], fetch: Fetch) -> None:
        self.refreshing.update(ids)
        # Not bound by the request's deadline: the refresh outlives the request that saw the
        # stale entry, and is bounded by the upstream policy's own timeouts.
        task = spawn_detached(self._refresh(ids, fetch), name=f"{self.name}-cache-refresh")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _refresh(self, ids: list[str], fetch: Fetch) -> None:
        try:
            fetched = await fetch(ids)
            await self._write({i: fetched.get(i) for i in ids}, self.clock())
        except Exception as exc:  # the stale value stays: served until stale_ttl
            log.warning("%s cache refresh failed, serving stale: %r", self.name, exc)
        finally:
            self.refreshing.difference_update(ids)

    async def _read(self, ids: Sequence[str]) -> dict[str, _Entry[V]]:
        keys = {self.key(i): i for i in ids}
        raw = await self.store.get_many(list(keys))
        entries: dict[str, _Entry[V]] = {}
        for key, data in raw.items():
            try:
                doc = json.loads(data)
                value = None if doc["value"] is None else self.decode(doc["value"])
                entries[keys[key]] = _Entry(float(doc["at"]), value)
            except (ValueError, KeyError, TypeError) as exc:  # an old or foreign format
                log.warning("%s cache entry %s unreadable, a miss: %r", self.name, key, exc)
        return entries

    async def _write(self, values: Mapping[str, V | None], at: float) -> None:
        items = {
            self.key(i): json.dumps(
                {"at": at, "value": None if v is None else self.encode(v)}, separators=(",", ":")
            ).encode()
            for i, v in values.items()
        }
        await self.store.set_many(items, self.stale_ttl)


def _encode_content(item: ContentItem) -> dict[str, Any]:
    return dataclasses.asdict(item)


def _decode_content(doc: Any) -> ContentItem:
    return ContentItem(**doc)


def _encode_profile(profile: Profile) -> dict[str, Any]:
    return {"user_id": profile.user_id, "traits": profile.traits, "audiences": profile.audiences}


def _decode_profile(doc: Any) -> Profile:
    return Profile(
        user_id=doc["user_id"], traits=dict(doc["traits"]), audiences=tuple(doc["audiences"])
    )


class CachedContent:
    """`ContentPort` with content items by delivery key cached (by id: passed through)."""

    def __init__(
        self,
        inner: ContentPort,
        store: CacheStore,
        fresh_ttl: float,
        stale_ttl: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache: _SwrCache[ContentItem] = _SwrCache(
            store,
            name=inner.name,
            key=content_key,
            encode=_encode_content,
            decode=_decode_content,
            fresh_ttl=fresh_ttl,
            stale_ttl=stale_ttl,
            clock=clock,
        )

    async def content_by_key(self, delivery_key: str) -> ContentItem | None:
        return (await self.content_by_keys([delivery_key]))[delivery_key]

    async def content_by_id(self, delivery_id: str) -> ContentItem | None:
        return await self.inner.content_by_id(delivery_id)

    async def content_by_keys(
        self, delivery_keys: Sequence[str]
    ) -> Mapping[str, ContentItem | None]:
        found = await self.cache.get_many(delivery_keys, self.inner.content_by_keys)
        return {key: found.get(key) for key in delivery_keys}

    async def invalidate_content(self, delivery_keys: Sequence[str]) -> None:
        await self.cache.invalidate(delivery_keys)


class CachedProfiles:
    """`ProfilePort` with profiles cached per CDP user id; everything else passed through."""

    def __init__(
        self,
        inner: ProfilePort,
        store: CacheStore,
        fresh_ttl: float,
        stale_ttl: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache: _SwrCache[Profile] = _SwrCache(
            store,
            name=inner.name,
            key=profile_key,
            encode=_encode_profile,
            decode=_decode_profile,
            fresh_ttl=fresh_ttl,
            stale_ttl=stale_ttl,
            clock=clock,
        )

    async def profile(self, user_id: str) -> Profile | None:
        return (await self.profiles([user_id]))[user_id]

    async def profiles(self, user_ids: Sequence[str]) -> Mapping[str, Profile | None]:
        found = await self.cache.get_many(user_ids, self.inner.profiles)
        return {user_id: found.get(user_id) for user_id in user_ids}

    async def external_ids(self, user_id: str) -> list[ExternalId]:
        return await self.inner.external_ids(user_id)

    async def track(self, events: Sequence[TrackEvent]) -> None:
        await self.inner.track(events)

    async def request_deletion(self, user_id: str) -> None:
        await self.invalidate_profile(user_id)
        await self.inner.request_deletion(user_id)

    async def invalidate_profile(self, user_id: str) -> None:
        await self.cache.invalidate([user_id])
