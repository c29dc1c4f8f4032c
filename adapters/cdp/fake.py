"""A fake Segment (Profile API, Tracking API and regulations), as one Starlette app.

Speaks the wire format `SegmentClient` expects (see /work/shared/UPSTREAMS.md):

- Profile API, HTTP Basic with the access token (401 `authentication_error` otherwise):
  `GET /v1/spaces/{space}/collections/users/profiles/{id_type}:{value}/traits|external_ids|events`,
  paged with `limit` and an opaque `next` cursor; 404 `not_found` for an unknown profile.
  A profile can be looked up by any of its external ids (`user_id:...`, `email:...`).
- Tracking API, HTTP Basic with the write key: `POST /v1/track`, `/v1/identify`, `/v1/batch`;
  messages are deduplicated by `messageId` and kept in `.tracked`; `identify` merges its
  traits into the profile. Over 32 KB a message, 500 KB or 2,500 events a batch is a 400.
- `POST /regulations`, Bearer access token: kept in `.deletion_requests`.

Requests are recorded in `.requests` (path relative to the mount, still escaped); `latency`
delays every reply; `max_in_flight` is the most requests served at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import quote, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PROFILE_PREFIX = "/v1/spaces/{space}/collections/users/profiles/{rest:path}"
DEFAULT_LIMIT = 10
MAX_LIMIT = 200
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500
MESSAGE_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})

Handler = Callable[[Request], Awaitable[Response]]


class RecordedRequest(NamedTuple):
    """One request the fake received: path relative to the fake's mount, raw (escaped)."""

    method: str
    path: str
    query: dict[str, str]


@dataclass
class _Profile:
    user_id: str
    traits: dict[str, Any]
    external_ids: list[tuple[str, str]] = field(default_factory=list)
    created_at: str = "2024-01-01T00:00:00Z"


class FakeSegment:
    """An in-memory Segment workspace with one space and one source, served at `.app`."""

    def __init__(
        self,
        space_id: str = "patron-demo",
        access_token: str = "patron-demo-token",
        write_key: str = "patron-demo-write-key",
    ) -> None:
        self.space_id = space_id
        self.access_token = access_token
        self.write_key = write_key
        self._profiles: dict[str, _Profile] = {}
        self._message_ids: set[str] = set()
        self.tracked: list[dict[str, Any]] = []
        self.deletion_requests: list[dict[str, Any]] = []
        self.requests: list[RecordedRequest] = []
        self.latency: float = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.app = Starlette(
            routes=[
                Route(PROFILE_PREFIX, self._served(self._profile_api), methods=["GET"]),
                Route("/v1/track", self._served(self._track), methods=["POST"]),
                Route("/v1/identify", self._served(self._identify), methods=["POST"]),
                Route("/v1/batch", self._served(self._batch), methods=["POST"]),
                Route("/regulations", self._served(self._regulations), methods=["POST"]),
            ]
        )

    # --- seeding --------------------------------------------------------------------------
    def add_profile(
        self,
        user_id: str,
        traits: dict[str, Any],
        *,
        external_ids: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Create (or replace) a profile; `external_ids` are extra (type, id) pairs."""
        ids = [("user_id", user_id), *((kind, value) for kind, value in external_ids)]
        self._profiles[user_id] = _Profile(user_id, dict(traits), list(dict.fromkeys(ids)))

    def remove_profile(self, user_id: str) -> None:
        self._profiles.pop(user_id, None)

    def reset_requests(self) -> None:
        self.requests.clear()
        self.max_in_flight = 0

    def find_profile(self, id_type: str, value: str) -> str | None:
        """The user id of the profile that has this external id, or None."""
        for profile in self._profiles.values():
            if (id_type, value) in profile.external_ids:
                return profile.user_id
        return None

    # --- plumbing -------------------------------------------------------------------------
    def _served(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            self.requests.append(
                RecordedRequest(request.method, _raw_path(request), dict(request.query_params))
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

    # --- Profile API ----------------------------------------------------------------------
    async def _profile_api(self, request: Request) -> Response:
        if _basic_user(request) != self.access_token:
            return error(401, "authentication_error", "Invalid access token")
        if request.path_params["space"] != self.space_id:
            return error(404, "not_found", "Space not found")
        # The raw path keeps an escaped `/` or `+` inside the id intact.
        parts = [unquote(part) for part in _raw_path(request).split("/profiles/", 1)[1].split("/")]
        if len(parts) != 2 or ":" not in parts[0]:
            return error(404, "not_found", "Resource not found")
        id_type, value = parts[0].split(":", 1)
        user_id = self.find_profile(id_type, value)
        resource = parts[1]
        if resource == "events":
            return self._events(request, user_id, value if id_type == "user_id" else None)
        if user_id is None:
            return error(404, "not_found", "Profile not found")
        profile = self._profiles[user_id]
        if resource == "traits":
            return self._traits(request, profile)
        if resource == "external_ids":
            return self._external_ids(request, profile)
        return error(404, "not_found", "Resource not found")

    def _traits(self, request: Request, profile: _Profile) -> Response:
        include = request.query_params.get("include")
        traits = profile.traits
        if include:
            wanted = set(include.split(","))
            traits = {key: value for key, value in traits.items() if key in wanted}
        items = list(traits.items())
        page = _page(request, items)
        if isinstance(page, Response):
            return page
        chunk, cursor = page
        return JSONResponse({"traits": dict(chunk), "cursor": cursor})

    def _external_ids(self, request: Request, profile: _Profile) -> Response:
        entries = [
            {
                "id": value,
                "type": kind,
                "source_id": "patron",
                "collection": "users",
                "created_at": profile.created_at,
                "encoding": "none",
            }
            for kind, value in profile.external_ids
        ]
        page = _page(request, entries)
        if isinstance(page, Response):
            return page
        chunk, cursor = page
        return JSONResponse({"data": chunk, "cursor": cursor})

    def _events(self, request: Request, user_id: str | None, raw_id: str | None) -> Response:
        subject = user_id or raw_id
        events = [
            _as_profile_event(message)
            for message in self.tracked
            if message.get("userId") == subject and message.get("type") == "track"
        ]
        if user_id is None and not events:
            return error(404, "not_found", "Profile not found")
        events.sort(key=lambda event: str(event.get("timestamp")), reverse=True)
        page = _page(request, events)
        if isinstance(page, Response):
            return page
        chunk, cursor = page
        return JSONResponse({"data": chunk, "cursor": cursor})

    # --- Tracking API ---------------------------------------------------------------------
    async def _track(self, request: Request) -> Response:
        return await self._single(request, "track")

    async def _identify(self, request: Request) -> Response:
        return await self._single(request, "identify")

    async def _single(self, request: Request, kind: str) -> Response:
        if _basic_user(request) != self.write_key:
            return error(401, "authentication_error", "Invalid write key")
        body = await request.body()
        if len(body) > MAX_MESSAGE_BYTES:
            return error(400, "invalid_request_error", "Message over 32 KB")
        message = _json_object(body)
        if message is None:
            return error(400, "invalid_request_error", "Body must be a JSON object")
        problem = self._accept({**message, "type": kind})
        if problem:
            return error(400, "validation_error", problem)
        return JSONResponse({"success": True})

    async def _batch(self, request: Request) -> Response:
        if _basic_user(request) != self.write_key:
            return error(401, "authentication_error", "Invalid write key")
        body = await request.body()
        if len(body) > MAX_BATCH_BYTES:
            return error(400, "invalid_request_error", "Batch over 500 KB")
        payload = _json_object(body)
        batch = payload.get("batch") if payload is not None else None
        if not isinstance(batch, list) or not all(isinstance(item, dict) for item in batch):
            return error(400, "invalid_request_error", "batch must be a list of objects")
        if len(batch) > MAX_BATCH_EVENTS:
            return error(400, "invalid_request_error", "Batch over 2,500 events")
        problems = [problem for message in batch if (problem := self._check(message))]
        if problems:
            return error(400, "validation_error", problems[0])
        for message in batch:
            self._accept(message)
        return JSONResponse({"success": True})

    def _check(self, message: dict[str, Any]) -> str | None:
        if message.get("type") not in MESSAGE_TYPES:
            return "type must be one of " + ", ".join(sorted(MESSAGE_TYPES))
        if not message.get("userId") and not message.get("anonymousId"):
            return "userId or anonymousId is required"
        if message.get("type") == "track" and not message.get("event"):
            return "event is required"
        return None

    def _accept(self, message: dict[str, Any]) -> str | None:
        """Validate and store one message (once per messageId); an error message or None."""
        problem = self._check(message)
        if problem:
            return problem
        message_id = message.get("messageId") or str(uuid.uuid4())
        if message_id in self._message_ids:
            return None
        self._message_ids.add(message_id)
        self.tracked.append({**message, "messageId": message_id})
        if message["type"] == "identify" and message.get("userId"):
            self._identify_traits(str(message["userId"]), message.get("traits") or {})
        return None

    def _identify_traits(self, user_id: str, traits: dict[str, Any]) -> None:
        profile = self._profiles.get(user_id)
        if profile is None:
            self.add_profile(user_id, traits)
        else:
            profile.traits.update(traits)

    # --- regulations ----------------------------------------------------------------------
    async def _regulations(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return error(401, "authentication_error", "Invalid token")
        body = _json_object(await request.body())
        subject = body.get("subject") if body is not None else None
        ids = subject.get("ids") if isinstance(subject, dict) else None
        if body is None or not body.get("regulationType") or not isinstance(ids, list) or not ids:
            return error(400, "validation_error", "regulationType and subject.ids are required")
        self.deletion_requests.append(body)
        return JSONResponse({"data": {"regulateId": str(uuid.uuid4())}})


def error(status: int, code: str, message: str) -> JSONResponse:
    """A reply in Segment's error shape."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _page(request: Request, items: list[Any]) -> tuple[list[Any], dict[str, Any]] | Response:
    """The slice of `items` that `limit` and `next` ask for, and its cursor."""
    limit_text = request.query_params.get("limit", str(DEFAULT_LIMIT))
    next_text = request.query_params.get("next") or "0"
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        return error(400, "invalid_request_error", f"limit must be 1..{MAX_LIMIT}")
    if not next_text.isdigit():
        return error(400, "invalid_request_error", "invalid next cursor")
    limit, start = int(limit_text), int(next_text)
    chunk = items[start : start + limit]
    has_more = start + limit < len(items)
    next_cursor = str(start + limit) if has_more else ""
    url = request.url.path + (f"?limit={limit}&next={next_cursor}" if has_more else "")
    return chunk, {"url": url, "has_more": has_more, "next": next_cursor}


def _as_profile_event(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": message.get("type"),
        "event": message.get("event"),
        "properties": message.get("properties") or {},
        "timestamp": message.get("timestamp"),
        "message_id": message.get("messageId"),
    }


def _basic_user(request: Request) -> str | None:
    """The user name of an HTTP Basic `Authorization` header, or None."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0]


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _raw_path(request: Request) -> str:
    """The request path as sent (still escaped), without the prefix the app is mounted at."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    prefix = quote(request.scope.get("root_path", ""))
    if prefix and path.startswith(prefix):
        path = path[len(prefix) :]
    return path
