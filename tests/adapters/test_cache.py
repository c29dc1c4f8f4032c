"""The upstream caches: the stores (in process; Redis when `PATRON_TEST_REDIS_URL` is set)
and the cached content and profile ports (fresh, refreshed in the background, stale if
the upstream fails, negative entries, one member's key never another's)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest
from redis.asyncio import Redis

from adapters.cache.cached_ports import CachedContent, CachedProfiles
from adapters.cache.store import CacheStore, MemoryCacheStore, RedisCacheStore
from loyalty.errors import UpstreamUnavailable
from loyalty.upstreams import ContentItem, ExternalId, Profile, TrackEvent
from tests.adapters.conftest import Now


class FakeCms:
    name = "cms"

    def __init__(self) -> None:
        self.items: dict[str, ContentItem] = {}
        self.calls: list[list[str]] = []
        self.down = False

    def put(self, key: str, title: str) -> None:
        self.items[key] = ContentItem(f"id-{key}", key, "s", title, {"title": title}, None)

    async def content_by_key(self, delivery_key: str) -> ContentItem | None:
        return (await self.content_by_keys([delivery_key]))[delivery_key]

    async def content_by_id(self, delivery_id: str) -> ContentItem | None:
        return None

    async def content_by_keys(
        self, delivery_keys: Sequence[str]
    ) -> Mapping[str, ContentItem | None]:
        self.calls.append(list(delivery_keys))
        if self.down:
            raise UpstreamUnavailable("cms", "HTTP 503")
        return {key: self.items.get(key) for key in delivery_keys}


class FakeCdp:
    name = "cdp"

    def __init__(self) -> None:
        self.traits: dict[str, dict[str, object]] = {}
        self.calls: list[list[str]] = []
        self.down = False

    async def profile(self, user_id: str) -> Profile | None:
        return (await self.profiles([user_id]))[user_id]

    async def profiles(self, user_ids: Sequence[str]) -> Mapping[str, Profile | None]:
        self.calls.append(list(user_ids))
        if self.down:
            raise UpstreamUnavailable("cdp", "HTTP 503")
        return {
            u: Profile(u, dict(self.traits[u]), ("vip",)) if u in self.traits else None
            for u in user_ids
        }

    async def external_ids(self, user_id: str) -> list[ExternalId]:
        return []

    async def track(self, events: Sequence[TrackEvent]) -> None:
        return None

    async def request_deletion(self, user_id: str) -> None:
        return None


# --- stores -------------------------------------------------------------------------------
async def test_store_round_trip(store: CacheStore) -> None:
    await store.set_many({"a": b"1", "b": b"2"}, 60)
    assert await store.get_many(["a", "b", "c"]) == {"a": b"1", "b": b"2"}
    await store.delete(["a"])
    assert await store.get_many(["a", "b"]) == {"b": b"2"}


async def test_memory_store_expires_and_evicts_least_recently_used() -> None:
    now = Now()
    store = MemoryCacheStore(2, clock=now)
    await store.set_many({"a": b"1", "b": b"2"}, 10)
    await store.get_many(["a"])  # b is now the least recently used
    await store.set_many({"c": b"3"}, 10)
    assert await store.get_many(["a", "b", "c"]) == {"a": b"1", "c": b"3"}
    now.t += 10
    assert await store.get_many(["a", "c"]) == {}
    assert len(store) == 0


async def test_redis_down_is_a_miss_not_a_failure() -> None:
    redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    store = RedisCacheStore(redis)
    await store.set_many({"a": b"1"}, 60)
    assert await store.get_many(["a"]) == {}
    await store.delete(["a"])
    assert store.failures == 3
    cms = FakeCms()
    cms.put("home", "Home")
    cached = CachedContent(cms, store, 300, 3600)
    item = await cached.content_by_key("home")
    assert item is not None and item.name == "Home"
    await redis.aclose()


# --- cached ports -------------------------------------------------------------------------
async def test_fresh_entries_are_served_without_a_call(store: CacheStore) -> None:
    cms, now = FakeCms(), Now()
    cms.put("a", "A")
    cms.put("b", "B")
    cached = CachedContent(cms, store, 300, 3600, clock=now)
    first = await cached.content_by_keys(["a", "b"])
    cms.put("a", "A2")
    now.t += 239  # the last 20% of the TTL (from 240 s) would refresh ahead
    assert await cached.content_by_keys(["a", "b", "a"]) == first
    await cached.cache.drain()
    assert cms.calls == [["a", "b"]]
    # Only the missing key goes upstream, in one call.
    cms.put("c", "C")
    assert [i.name for i in (await cached.content_by_keys(["a", "c"])).values() if i] == [
        "A",
        "C",
    ]
    assert cms.calls == [["a", "b"], ["c"]]


async def test_stale_entries_are_served_and_refreshed_once_in_the_background(
    store: CacheStore,
) -> None:
    cms, now = FakeCms(), Now()
    cms.put("a", "A")
    cached = CachedContent(cms, store, 300, 3600, clock=now)
    await cached.content_by_key("a")
    cms.put("a", "A2")
    now.t += 301
    first = await cached.content_by_key("a")
    second = await cached.content_by_key("a")  # the refresh is under way: not a second one
    assert first is not None and second is not None
    assert (first.name, second.name) == ("A", "A")
    await cached.cache.drain()
    assert cms.calls == [["a"], ["a"]]
    refreshed = await cached.content_by_key("a")
    assert refreshed is not None and refreshed.name == "A2"
    assert cms.calls == [["a"], ["a"]]


async def test_stale_if_error_then_a_miss_after_the_stale_ttl(store: CacheStore) -> None:
    cdp, now = FakeCdp(), Now()
    cdp.traits["u1"] = {"first_name": "Ann"}
    cached = CachedProfiles(cdp, store, 60, 3600, clock=now)
    assert await cached.profile("u1") == Profile("u1", {"first_name": "Ann"}, ("vip",))
    cdp.down = True
    now.t += 1800
    assert await cached.profile("u1") == Profile("u1", {"first_name": "Ann"}, ("vip",))
    await cached.cache.drain()  # the refresh failed: the old value stays
    assert await cached.profile("u1") == Profile("u1", {"first_name": "Ann"}, ("vip",))
    await cached.cache.drain()
    now.t += 1800
    with pytest.raises(UpstreamUnavailable):
        await cached.profile("u1")


async def test_not_found_is_cached(store: CacheStore) -> None:
    cdp = FakeCdp()
    cached = CachedProfiles(cdp, store, 60, 3600)
    assert await cached.profiles(["nobody", "nobody"]) == {"nobody": None}
    assert await cached.profile("nobody") is None
    assert cdp.calls == [["nobody"]]


async def test_keys_are_per_member_and_invalidated_per_member(store: CacheStore) -> None:
    cdp = FakeCdp()
    cdp.traits["u1"] = {"first_name": "Ann"}
    cdp.traits["u2"] = {"first_name": "Bob"}
    cached = CachedProfiles(cdp, store, 60, 3600)
    both = await cached.profiles(["u1", "u2"])
    assert {u: p.first_name for u, p in both.items() if p} == {"u1": "Ann", "u2": "Bob"}
    u2 = await cached.profile("u2")
    assert u2 is not None and (u2.user_id, u2.first_name) == ("u2", "Bob")
    cdp.traits["u1"] = {"first_name": "Annie"}
    await cached.invalidate_profile("u1")
    u1 = await cached.profile("u1")
    assert u1 is not None and u1.first_name == "Annie"
    assert cdp.calls == [["u1", "u2"], ["u1"]]


async def test_content_invalidation_and_ttl_zero_turns_the_cache_off(store: CacheStore) -> None:
    cms = FakeCms()
    cms.put("a", "A")
    cached = CachedContent(cms, store, 300, 3600)
    await cached.content_by_key("a")
    cms.put("a", "A2")
    await cached.invalidate_content(["a"])
    item = await cached.content_by_key("a")
    assert item is not None and item.name == "A2"
    off = CachedContent(cms, MemoryCacheStore(), 0, 3600)
    await off.content_by_key("a")
    await off.content_by_key("a")
    assert len(cms.calls) == 4


# --- refresh ahead of expiry ----------------------------------------------------------------
async def test_a_fresh_entry_is_refreshed_in_the_background_near_its_expiry(
    store: CacheStore,
) -> None:
    cms, now = FakeCms(), Now()
    cms.put("a", "A")
    cached = CachedContent(cms, store, 100, 3600, clock=now)
    await cached.content_by_key("a")
    cms.put("a", "A2")
    now.t += 79.9  # before the last 20% of the fresh TTL: no call
    item = await cached.content_by_key("a")
    await cached.cache.drain()
    assert item is not None and item.name == "A"
    assert cms.calls == [["a"]]
    now.t += 0.1  # 80 s: in the window, served as it is and refreshed once in the background
    first = await cached.content_by_key("a")
    second = await cached.content_by_key("a")  # the refresh is under way: not a second one
    assert first is not None and second is not None
    assert (first.name, second.name) == ("A", "A")
    await cached.cache.drain()
    assert cms.calls == [["a"], ["a"]]
    # Refreshed at 80 s: fresh until 160 s, and read without a call at 159 s, long after
    # the first fetch's 100 s TTL: a key read steadily never goes stale.
    now.t += 79
    refreshed = await cached.content_by_key("a")
    await cached.cache.drain()
    assert refreshed is not None and refreshed.name == "A2"
    assert cms.calls == [["a"], ["a"]]


class GatedCms(FakeCms):
    """Answers with the items as they were when asked, once `gate` opens (a slow fetch)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()

    async def content_by_keys(
        self, delivery_keys: Sequence[str]
    ) -> Mapping[str, ContentItem | None]:
        answer = await super().content_by_keys(delivery_keys)
        await self.gate.wait()
        return answer


async def test_an_invalidation_wins_over_a_refresh_that_was_under_way(store: CacheStore) -> None:
    cms, now = GatedCms(), Now()
    cms.put("a", "A")
    cached = CachedContent(cms, store, 100, 3600, clock=now)
    await cached.content_by_key("a")
    now.t += 90
    cms.gate.clear()
    await cached.content_by_key("a")  # starts a background refresh, which reads "A" ...
    await asyncio.sleep(0)
    assert cms.calls == [["a"], ["a"]]
    now.t += 1
    cms.put("a", "A2")  # ... then "A2" is published and the webhook invalidates the key
    await cached.invalidate_content(["a"])
    cms.gate.set()
    await cached.cache.drain()  # the refresh writes "A", fetched before the invalidation
    item = await cached.content_by_key("a")
    assert item is not None and item.name == "A2"
    assert cms.calls == [["a"], ["a"], ["a"]]


async def test_an_invalidation_marks_only_its_own_keys(store: CacheStore) -> None:
    cdp, now = FakeCdp(), Now()
    cdp.traits["u1"] = {"first_name": "Ann"}
    cdp.traits["u2"] = {"first_name": "Bob"}
    cached = CachedProfiles(cdp, store, 60, 3600, clock=now)
    await cached.profiles(["u1", "u2"])
    now.t += 1
    await cached.invalidate_profile("u1")
    await cached.invalidate_profile("u1")  # idempotent
    now.t += 1
    await cached.profiles(["u1", "u2"])
    await cached.profiles(["u1", "u2"])
    assert cdp.calls == [["u1", "u2"], ["u1"]]
