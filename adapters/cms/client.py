"""Amplience Content Delivery 2: the `ContentPort` of the gateway.

Reads published content items by delivery key or id from a hub's delivery base URL
(`https://{hub}.cdn.content.amplience.net`, possibly behind a path prefix), and in batches
through `POST /content/fetch` (at most 12 requests per call, the real API limit; bigger
inputs are split into chunks sent concurrently). Every call goes through the shared
`Upstream` policy; "not found" is `None`, a malformed reply is `UpstreamUnavailable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from adapters.http import Upstream
from loyalty.errors import UpstreamUnavailable
from loyalty.upstreams import ContentItem

UPSTREAM_NAME = "cms"
IMAGE_LINK_SCHEMA = "http://bigcontent.io/cms/schema/v1/core#/definitions/image-link"
NOT_FOUND_TYPE = "CONTENT_NOT_FOUND"
MAX_FETCH_REQUESTS = 12
DEFAULT_MEDIA_HOST = "cdn.media.amplience.net"

T = TypeVar("T")


class AmplienceClient:
    """Content items from an Amplience hub (Content Delivery 2)."""

    name = UPSTREAM_NAME

    def __init__(self, upstream: Upstream, *, locale: str = "en-GB") -> None:
        self.upstream = upstream
        self.locale = locale

    # --- single items -------------------------------------------------------------------
    async def content_by_key(self, delivery_key: str) -> ContentItem | None:
        """The item published under `delivery_key` (which may contain `/`), or None."""
        return await self._get_item(f"content/key/{quote(delivery_key, safe='/')}")

    async def content_by_id(self, delivery_id: str) -> ContentItem | None:
        """The item with this delivery id, or None."""
        return await self._get_item(f"content/id/{quote(delivery_id, safe='')}")

    async def _get_item(self, path: str) -> ContentItem | None:
        params = {"depth": "all", "format": "inlined", "locale": self.locale}
        response = await self.upstream.request("GET", path, params=params)
        if response.status_code == 404 and _is_not_found(response):
            return None
        if response.status_code != 200:
            raise self.upstream.unexpected(response)
        return parse_content(self.upstream.json(response))

    # --- batch ----------------------------------------------------------------------------
    async def content_by_keys(
        self, delivery_keys: Sequence[str]
    ) -> Mapping[str, ContentItem | None]:
        """Items by delivery key: one `/content/fetch` per 12 distinct keys, concurrently.

        The result has every requested key; a key the hub does not know maps to None.
        """
        keys = list(dict.fromkeys(delivery_keys))
        chunks = [
            keys[start : start + MAX_FETCH_REQUESTS]
            for start in range(0, len(keys), MAX_FETCH_REQUESTS)
        ]
        found: dict[str, ContentItem | None] = {}
        for part in await gather_all([self._fetch(chunk) for chunk in chunks]):
            found.update(part)
        return {key: found.get(key) for key in delivery_keys}

    async def _fetch(self, keys: Sequence[str]) -> dict[str, ContentItem | None]:
        body = {
            "requests": [{"key": key} for key in keys],
            "parameters": {"depth": "all", "format": "inlined", "locale": self.locale},
        }
        response = await self.upstream.request("POST", "content/fetch", json=body, read=True)
        if response.status_code != 200:
            raise self.upstream.unexpected(response)
        entries = _responses(self.upstream.json(response))
        if len(entries) != len(keys):
            raise _malformed(f"{len(entries)} responses for {len(keys)} requests")
        return {key: _entry(entry) for key, entry in zip(keys, entries, strict=True)}


async def gather_all(calls: Sequence[Awaitable[T]]) -> list[T]:
    """Await all calls concurrently; if any failed, raise the first failure after all end."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    values: list[T] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        values.append(result)
    return values


# --- parsing ----------------------------------------------------------------------------
def parse_content(json: Any) -> ContentItem:
    """A `ContentItem` from a delivery reply (`{"content": {...}}`) or the item itself.

    Raises `UpstreamUnavailable` when the shape is not an Amplience content item.
    """
    content = json
    if isinstance(json, dict) and "_meta" not in json and "content" in json:
        content = json["content"]
    if not isinstance(content, dict):
        raise _malformed("content is not an object")
    meta = content.get("_meta")
    if not isinstance(meta, dict):
        raise _malformed("content has no _meta")
    delivery_id, schema = meta.get("deliveryId"), meta.get("schema")
    if not isinstance(delivery_id, str) or not isinstance(schema, str):
        raise _malformed("_meta lacks deliveryId or schema")
    fields = {key: value for key, value in content.items() if key != "_meta"}
    return ContentItem(
        delivery_id=delivery_id,
        delivery_key=_optional_text(meta.get("deliveryKey"), "deliveryKey"),
        schema=schema,
        name=_optional_text(meta.get("name"), "name"),
        fields=fields,
        image_url=first_image_url(fields),
    )


def first_image_url(fields: Mapping[str, Any]) -> str | None:
    """The URL of the first image link among the top-level fields (or top-level lists)."""
    for value in fields.values():
        candidates = value if isinstance(value, list) else [value]
        for candidate in candidates:
            url = image_url(candidate)
            if url is not None:
                return url
    return None


def image_url(value: Any) -> str | None:
    """`https://{defaultHost}/i/{endpoint}/{name}` for an image link, else None."""
    if not isinstance(value, dict):
        return None
    meta = value.get("_meta")
    if not isinstance(meta, dict) or meta.get("schema") != IMAGE_LINK_SCHEMA:
        return None
    name, endpoint = value.get("name"), value.get("endpoint")
    if not isinstance(name, str) or not isinstance(endpoint, str):
        return None
    host = value.get("defaultHost")
    host = host if isinstance(host, str) and host else DEFAULT_MEDIA_HOST
    return f"https://{host}/i/{endpoint}/{quote(name)}"


def _responses(body: Any) -> list[Any]:
    entries = body.get("responses") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise _malformed("batch reply has no responses list")
    return entries


def _entry(entry: Any) -> ContentItem | None:
    """One batch entry: `{"content": ...}` is an item, `{"error": ...}` is None."""
    if not isinstance(entry, dict):
        raise _malformed("batch entry is not an object")
    if "content" in entry:
        return parse_content(entry["content"])
    if "error" in entry:
        return None
    raise _malformed("batch entry has neither content nor error")


def _is_not_found(response: httpx.Response) -> bool:
    """Whether a 404 is Amplience's `CONTENT_NOT_FOUND` (not, say, a wrong base URL)."""
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("type") == NOT_FOUND_TYPE


def _optional_text(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _malformed(f"_meta.{what} is not a string")


def _malformed(detail: str) -> UpstreamUnavailable:
    return UpstreamUnavailable(UPSTREAM_NAME, f"malformed reply: {detail}")
