"""A fake Amplience Content Delivery 2 API, as a Starlette app.

Speaks the wire format `AmplienceClient` expects (see /work/shared/UPSTREAMS.md):

- `GET /content/key/{deliveryKey}` and `GET /content/id/{deliveryId}`: `{"content": {...}}`,
  or 404 `{"error": {"type": "CONTENT_NOT_FOUND", ...}}`;
- `POST /content/fetch`: up to 12 `{"key"}`/`{"id"}` requests (more is a 400), one entry per
  request, a missing item being an entry-level error;
- `POST /content/filter`: `filterBy` JSON-pointer paths (such as `/_meta/schema`) with a
  `page` size and an opaque `cursor`.

`publish_event(key)` gives the webhook body Amplience sends when that item is published
(the format `adapters.cms.events` relies on), for `/webhooks/cms`.

Content is stored already inlined, so `depth`, `format` and `locale` are accepted and
ignored. Requests are recorded in `.requests`; `latency` delays every reply; `max_in_flight`
is the most requests served at once.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.cms.events import CONTENT_ITEM_PUBLISHED

IMAGE_LINK_SCHEMA = "http://bigcontent.io/cms/schema/v1/core#/definitions/image-link"
IMAGE_ENDPOINT = "patron"
IMAGE_HOST = "cdn.media.amplience.net"
MAX_FETCH_REQUESTS = 12
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 50

Handler = Callable[[Request], Awaitable[Response]]


class RecordedRequest(NamedTuple):
    """One request the fake received: path relative to the fake's mount, raw (escaped)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any


class FakeAmplience:
    """An in-memory Amplience hub with a delivery API at `.app`."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Any]] = {}  # delivery id -> content (with _meta)
        self._keys: dict[str, str] = {}  # delivery key -> delivery id
        self.requests: list[RecordedRequest] = []
        self.latency: float = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.app = Starlette(
            routes=[
                Route("/content/key/{key:path}", self._served(self._by_key), methods=["GET"]),
                Route("/content/id/{id}", self._served(self._by_id), methods=["GET"]),
                Route("/content/fetch", self._served(self._fetch), methods=["POST"]),
                Route("/content/filter", self._served(self._filter), methods=["POST"]),
            ]
        )

    # --- seeding --------------------------------------------------------------------------
    def add_content(
        self,
        delivery_key: str | None,
        schema: str,
        name: str,
        fields: dict[str, Any],
        *,
        image: str | None = None,
        delivery_id: str | None = None,
    ) -> str:
        """Publish an item (replacing one with the same key or id); returns its delivery id."""
        delivery_id = delivery_id or str(uuid.uuid4())
        meta: dict[str, Any] = {"name": name, "schema": schema, "deliveryId": delivery_id}
        if delivery_key is not None:
            meta["deliveryKey"] = delivery_key
        content: dict[str, Any] = {"_meta": meta, **fields}
        if image is not None:
            content["image"] = image_link(image)
        if delivery_key is not None and delivery_key in self._keys:
            self._drop(self._keys[delivery_key])
        self._drop(delivery_id)
        self._items[delivery_id] = content
        if delivery_key is not None:
            self._keys[delivery_key] = delivery_id
        return delivery_id

    def publish_event(self, key: str, *, name: str = CONTENT_ITEM_PUBLISHED) -> bytes:
        """The exact body Amplience POSTs to a webhook when the item published under this
        delivery key (seeded with `add_content`) is published: sign it with
        `adapters.cms.events.sign` and send it to `/webhooks/cms`."""
        content = self._lookup_key(key)
        if content is None:
            raise KeyError(f"no content item under the delivery key {key!r}")
        meta = content["_meta"]
        payload = {
            "id": meta["deliveryId"],
            "label": meta["name"],
            "body": content,
            "status": "ACTIVE",
            "version": 1,
            "deliveryId": meta["deliveryId"],
        }
        return json.dumps({"name": name, "payload": payload}, separators=(",", ":")).encode()

    def remove_content(self, key: str) -> None:
        """Unpublish the item with this delivery key (or, failing that, this delivery id)."""
        self._drop(self._keys.get(key, key))

    def _drop(self, delivery_id: str) -> None:
        content = self._items.pop(delivery_id, None)
        if content is not None and "deliveryKey" in content["_meta"]:
            self._keys.pop(content["_meta"]["deliveryKey"], None)

    def reset_requests(self) -> None:
        self.requests.clear()
        self.max_in_flight = 0

    # --- plumbing -------------------------------------------------------------------------
    def _served(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            body = await _json_body(request)
            self.requests.append(
                RecordedRequest(
                    request.method, _raw_path(request), dict(request.query_params), body
                )
            )
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if self.latency > 0:
                    await asyncio.sleep(self.latency)
                return await handler(request)
            finally:
                self.in_flight -= 1

        return endpoint

    def _lookup_key(self, key: str) -> dict[str, Any] | None:
        delivery_id = self._keys.get(key)
        return None if delivery_id is None else self._items.get(delivery_id)

    # --- endpoints ------------------------------------------------------------------------
    async def _by_key(self, request: Request) -> Response:
        key = request.path_params["key"]
        content = self._lookup_key(key)
        if content is None:
            return JSONResponse(not_found({"deliveryKey": key}), status_code=404)
        return JSONResponse({"content": content})

    async def _by_id(self, request: Request) -> Response:
        delivery_id = request.path_params["id"]
        content = self._items.get(delivery_id)
        if content is None:
            return JSONResponse(not_found({"deliveryId": delivery_id}), status_code=404)
        return JSONResponse({"content": content})

    async def _fetch(self, request: Request) -> Response:
        body = await _json_body(request)
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return bad_request("requests must be a non-empty list")
        if len(requests) > MAX_FETCH_REQUESTS:
            return bad_request(f"at most {MAX_FETCH_REQUESTS} requests per call")
        return JSONResponse({"responses": [self._fetch_one(entry) for entry in requests]})

    def _fetch_one(self, entry: Any) -> dict[str, Any]:
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            content = self._lookup_key(entry["key"])
            data = {"deliveryKey": entry["key"]}
        elif isinstance(entry, dict) and isinstance(entry.get("id"), str):
            content = self._items.get(entry["id"])
            data = {"deliveryId": entry["id"]}
        else:
            return {"error": {"type": "INVALID_PARAMETERS", "message": "key or id required"}}
        return not_found(data) if content is None else {"content": content}

    async def _filter(self, request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("filterBy"), list):
            return bad_request("filterBy must be a list")
        page = body.get("page") or {}
        if not isinstance(page, dict):
            return bad_request("page must be an object")
        size = page.get("size", DEFAULT_PAGE_SIZE)
        if not isinstance(size, int) or not 0 < size <= MAX_PAGE_SIZE:
            return bad_request(f"page.size must be 1..{MAX_PAGE_SIZE}")
        cursor = page.get("cursor")
        start = int(cursor) if isinstance(cursor, str) and cursor.isdigit() else 0
        matches = [item for item in self._items.values() if _matches(item, body["filterBy"])]
        chunk = matches[start : start + size]
        page_info: dict[str, Any] = {"responseCount": len(chunk)}
        if start + size < len(matches):
            page_info["nextCursor"] = str(start + size)
        return JSONResponse({"responses": [{"content": item} for item in chunk], "page": page_info})


def image_link(name: str) -> dict[str, Any]:
    """An Amplience image link to `name` in the `patron` media endpoint."""
    return {
        "_meta": {"schema": IMAGE_LINK_SCHEMA},
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "name": name,
        "endpoint": IMAGE_ENDPOINT,
        "defaultHost": IMAGE_HOST,
    }


def not_found(data: dict[str, str]) -> dict[str, Any]:
    return {"error": {"type": "CONTENT_NOT_FOUND", "message": "Not found", "data": data}}


def bad_request(message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": "INVALID_PARAMETERS", "message": message}}, status_code=400
    )


def _matches(item: dict[str, Any], filters: list[Any]) -> bool:
    for condition in filters:
        if not isinstance(condition, dict) or not isinstance(condition.get("path"), str):
            return False
        if _pointer(item, condition["path"]) != condition.get("value"):
            return False
    return True


def _pointer(document: Any, path: str) -> Any:
    """The value at a JSON pointer such as `/_meta/schema`, or None."""
    value = document
    for part in path.strip("/").split("/"):
        if not isinstance(value, dict):
            return None
        value = value.get(part.replace("~1", "/").replace("~0", "~"))
    return value


async def _json_body(request: Request) -> Any:
    if request.method != "POST":
        return None
    try:
        return await request.json()
    except ValueError:
        return None


def _raw_path(request: Request) -> str:
    """The request path as sent (still escaped), without the prefix the app is mounted at."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    prefix = quote(request.scope.get("root_path", ""))
    if prefix and path.startswith(prefix):
        path = path[len(prefix) :]
    return path
