"""Cached decorators of the content and profile ports: stale-while-revalidate, refreshed
ahead of expiry, stale-if-error (the rules are in `adapters.cache.swr`). Order history has
its own decorator (`adapters.cache.cached_orders`); carts and the loyalty data are never
cached.

Content is cached per delivery key, profiles per CDP user id, so one member's profile is
never served to another. Invalidating a key deletes its entry and marks it, so a fetch under
way when the invalidation came does not put the old value back.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from adapters.cache.store import CacheStore
from adapters.cache.swr import CacheObserver, SwrCache
from loyalty.ports import ContentPort, ProfilePort
from loyalty.upstreams import ContentItem, ExternalId, Profile, TrackEvent

__all__ = ["CachedContent", "CachedProfiles", "content_key", "profile_key"]


def content_key(delivery_key: str) -> str:
    return f"cms:key:{delivery_key}"


def content_marker(delivery_key: str) -> str:
    return f"cms:invalidated:{delivery_key}"


def profile_key(user_id: str) -> str:
    return f"cdp:profile:{user_id}"


def profile_marker(user_id: str) -> str:
    return f"cdp:invalidated:{user_id}"


def _same(id_: str) -> str:
    return id_


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
        observer: CacheObserver | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache: SwrCache[str, ContentItem] = SwrCache(
            store,
            name=inner.name,
            key=content_key,
            scope=_same,
            marker=content_marker,
            encode=_encode_content,
            decode=_decode_content,
            fresh_ttl=fresh_ttl,
            stale_ttl=stale_ttl,
            clock=clock,
            observer=observer,
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
        """Forget these items on every replica sharing the store: the next read fetches."""
        await self.cache.invalidate(delivery_keys, delete=delivery_keys)


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
        observer: CacheObserver | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache: SwrCache[str, Profile] = SwrCache(
            store,
            name=inner.name,
            key=profile_key,
            scope=_same,
            marker=profile_marker,
            encode=_encode_profile,
            decode=_decode_profile,
            fresh_ttl=fresh_ttl,
            stale_ttl=stale_ttl,
            clock=clock,
            observer=observer,
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
        await self.cache.invalidate([user_id], delete=[user_id])
