"""Segment: the `ProfilePort` of the gateway.

Three Segment APIs, each behind its own `Upstream` (base URLs may carry a path prefix):

- the Profile API (`https://profiles.segment.com`), HTTP Basic with the space's access token:
  traits (paged with `next` while `has_more`) and external ids of one user. There is no
  batch read, so `profiles()` fans out one read per distinct user with bounded concurrency;
- the Tracking API (`https://api.segment.io`), HTTP Basic with the source's write key:
  `POST /v1/batch` of track events, retryable because `messageId` deduplicates upstream
  (a write all the same: never shared with another caller's identical batch);
- the regulations endpoint (a full URL from the settings), Bearer access token: a
  `SUPPRESS_WITH_DELETE` request for a user being erased.

`page_size` (at most 200, Segment's limit) is the traits page; tests make it small to
exercise paging.

Segment errors look like `{"error": {"code": ..., "message": ...}}`. A 404 `not_found` on a
read is "no profile" (None); 401 and malformed replies are `UpstreamUnavailable`.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from adapters.http import Upstream
from loyalty.errors import UpstreamUnavailable
from loyalty.upstreams import ExternalId, Profile, TrackEvent

UPSTREAM_NAME = "cdp"
TRAITS_PAGE_SIZE = 200
EXTERNAL_IDS_PAGE_SIZE = 100
MAX_PAGES = 100
MAX_BATCH_EVENTS = 2500
MAX_BATCH_BYTES = 500_000 - 1_000  # Segment's 500 KB, less room for the envelope

T = TypeVar("T")


class SegmentClient:
    """Profiles, external ids, track events and deletion requests in Segment."""

    name = UPSTREAM_NAME

    def __init__(
        self,
        profiles: Upstream,
        tracking: Upstream,
        regulations: Upstream | None,
        *,
        space_id: str,
        access_token: str,
        write_key: str,
        concurrency: int = 10,
        id_type: str = "user_id",
        page_size: int = TRAITS_PAGE_SIZE,
    ) -> None:
        if concurrency < 1 or page_size < 1:
            raise ValueError("concurrency and page_size must be at least 1")
        self.profiles_upstream = profiles
        self.tracking_upstream = tracking
        self.regulations_upstream = regulations
        self.space_id = space_id
        self.concurrency = concurrency
        self.id_type = id_type
        self.page_size = page_size
        self._profile_auth = (access_token, "")
        self._write_auth = (write_key, "")
        self._bearer = {"Authorization": f"Bearer {access_token}"}

    # --- Profile API ----------------------------------------------------------------------
    async def profile(self, user_id: str) -> Profile | None:
        """The user's traits (every page merged) and audiences, or None if unknown."""
        pages = await self._pages(user_id, "traits", self.page_size)
        if pages is None:
            return None
        traits: dict[str, Any] = {}
        for page in pages:
            page_traits = page.get("traits")
            if not isinstance(page_traits, dict):
                raise _malformed("traits is not an object")
            traits.update(page_traits)
        audiences = tuple(sorted(key for key, value in traits.items() if value is True))
        return Profile(user_id=user_id, traits=traits, audiences=audiences)

    async def profiles(self, user_ids: Sequence[str]) -> Mapping[str, Profile | None]:
        """One read per distinct user, at most `concurrency` at once; keyed by every id.

        If a read fails, the reads still running are cancelled and the error is raised.
        """
        semaphore = asyncio.Semaphore(self.concurrency)

        async def bounded(user_id: str) -> Profile | None:
            async with semaphore:
                return await self.profile(user_id)

        distinct = list(dict.fromkeys(user_ids))
        results = await gather_or_cancel([bounded(user_id) for user_id in distinct])
        found = dict(zip(distinct, results, strict=True))
        return {user_id: found[user_id] for user_id in user_ids}

    async def external_ids(self, user_id: str) -> list[ExternalId]:
        """The identifiers Segment merged into the user's profile ([] if unknown)."""
        pages = await self._pages(
            user_id, "external_ids", min(self.page_size, EXTERNAL_IDS_PAGE_SIZE)
        )
        if pages is None:
            return []
        return [parse_external_id(entry) for page in pages for entry in _data(page)]

    async def _pages(self, user_id: str, resource: str, limit: int) -> list[dict[str, Any]] | None:
        """Every page of a Profile API resource, following `cursor.next`; None on 404."""
        path = f"{self._profile_path(user_id)}/{resource}"
        pages: list[dict[str, Any]] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor:
                params["next"] = cursor
            page = await self._read(path, params)
            if page is None:
                return None
            pages.append(page)
            cursor = _next_cursor(page)
            if cursor is None:
                return pages
            if cursor in seen or len(pages) >= MAX_PAGES:
                raise _malformed(f"{resource} cursor does not end")
            seen.add(cursor)

    def _profile_path(self, user_id: str) -> str:
        space = quote(self.space_id, safe="")
        lookup = f"{quote(self.id_type, safe='')}:{escape_id(user_id)}"
        return f"v1/spaces/{space}/collections/users/profiles/{lookup}"

    async def _read(self, path: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        upstream = self.profiles_upstream
        response = await upstream.request("GET", path, params=params, auth=self._profile_auth)
        if response.status_code == 404 and _error_code(response) == "not_found":
            return None
        _check(upstream, response)
        body = upstream.json(response)
        if not isinstance(body, dict):
            raise _malformed("reply is not an object")
        return body

    # --- Tracking API ---------------------------------------------------------------------
    async def track(self, events: Sequence[TrackEvent]) -> None:
        """Send the events in one `POST /v1/batch` (more if over 2,500 events or ~500 KB)."""
        for batch in split_batches([track_message(event) for event in events]):
            response = await self.tracking_upstream.request(
                "POST", "v1/batch", json={"batch": batch}, auth=self._write_auth, idempotent=True
            )
            _check(self.tracking_upstream, response)

    # --- regulations ----------------------------------------------------------------------
    async def request_deletion(self, user_id: str) -> None:
        """Ask Segment to delete the user's data and suppress further collection."""
        upstream = self.regulations_upstream
        if upstream is None:
            raise UpstreamUnavailable(UPSTREAM_NAME, "no regulations URL configured")
        body = {
            "regulationType": "SUPPRESS_WITH_DELETE",
            "subject": {"type": "USER_ID", "ids": [user_id]},
        }
        # The setting is the full URL: post to it exactly (no trailing slash added).
        response = await upstream.request(
            "POST", upstream.base_url, json=body, headers=self._bearer
        )
        _check(upstream, response)


# --- helpers ------------------------------------------------------------------------------
def escape_id(value: str) -> str:
    """A profile id for a URL path: everything but unreserved characters escaped (`+`: %2B)."""
    return quote(value, safe="")


def track_message(event: TrackEvent) -> dict[str, Any]:
    """The Segment `track` message of an event."""
    return {
        "type": "track",
        "userId": event.user_id,
        "event": event.event,
        "properties": event.properties,
        "timestamp": iso_timestamp(event.timestamp),
        "messageId": event.message_id,
    }


def iso_timestamp(moment: datetime) -> str:
    """ISO 8601 with an offset; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def split_batches(messages: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Messages in batches of at most 2,500 events and ~500 KB of JSON each."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for message in messages:
        message_size = len(jsonlib.dumps(message, default=str).encode()) + 1
        full = len(current) >= MAX_BATCH_EVENTS or size + message_size > MAX_BATCH_BYTES
        if current and full:
            batches.append(current)
            current, size = [], 0
        current.append(message)
        size += message_size
    if current:
        batches.append(current)
    return batches


def parse_external_id(entry: Any) -> ExternalId:
    if not isinstance(entry, dict):
        raise _malformed("external id is not an object")
    value, kind = entry.get("id"), entry.get("type")
    if not isinstance(value, str) or not isinstance(kind, str):
        raise _malformed("external id lacks id or type")
    source_id, created_at = entry.get("source_id"), entry.get("created_at")
    return ExternalId(
        id=value,
        type=kind,
        source_id=source_id if isinstance(source_id, str) else None,
        created_at=created_at if isinstance(created_at, str) else None,
    )


async def gather_or_cancel(calls: Sequence[Awaitable[T]]) -> list[T]:
    """Await all calls concurrently; on the first failure cancel the rest and raise it."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    if not tasks:
        return []
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        _cancel(tasks)
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    if pending:
        _cancel(pending)
        await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        error = task.exception()
        if error is not None:
            raise error
    return [task.result() for task in tasks]


def _cancel(tasks: Iterable[asyncio.Future[Any]]) -> None:
    for task in tasks:
        task.cancel()


def _next_cursor(page: Mapping[str, Any]) -> str | None:
    cursor = page.get("cursor")
    if not isinstance(cursor, dict) or cursor.get("has_more") is not True:
        return None
    next_value = cursor.get("next")
    return next_value if isinstance(next_value, str) and next_value else None


def _data(page: Mapping[str, Any]) -> list[Any]:
    data = page.get("data")
    if not isinstance(data, list):
        raise _malformed("data is not a list")
    return data


def _error_code(response: httpx.Response) -> str | None:
    """The `error.code` of a Segment error reply (None if the body has none)."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def _check(upstream: Upstream, response: httpx.Response) -> None:
    """Raise `UpstreamUnavailable` unless the reply is a 2xx."""
    if response.is_success:
        return
    if response.status_code in (401, 403):
        code = _error_code(response) or "authentication_error"
        raise UpstreamUnavailable(upstream.name, f"HTTP {response.status_code} {code}")
    raise upstream.unexpected(response)


def _malformed(detail: str) -> UpstreamUnavailable:
    return UpstreamUnavailable(UPSTREAM_NAME, f"malformed reply: {detail}")
