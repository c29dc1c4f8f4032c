"""Amplience webhooks (the wire format of `/webhooks/cms`): what we rely on, in one place.

These are assumptions about Amplience's Dynamic Content webhooks, not checked against a
live hub; if the real format differs, this module is the only one to change.

- Signature: header `X-Amplience-Webhook-Signature`, the base64 of the HMAC-SHA256 of the
  raw body keyed with the webhook's secret (`PATRON_CMS_WEBHOOK_SECRET`).
- Body: a JSON object `{"name": "<event name>", "payload": {...}}`. For content item events
  the payload is the content item: `{"id": "<content item id>", "label": "...",
  "body": {"_meta": {"name", "schema", "deliveryKey", "deliveryId"}, ...fields}, ...}`.
- Relied on: `name` (a string) always; `payload` (an object) for the events in
  `INVALIDATING_EVENTS`; the delivery key at `payload.body._meta.deliveryKey`, or failing that
  `payload.deliveryKey`; `payload.id` when present (logged). Everything else is ignored.
- A delivery key that is absent or null means the item has none (an edition or a snapshot
  can carry no single key): the event is ignored, not refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CONTENT_ITEM_PUBLISHED",
    "CONTENT_ITEM_UPDATED",
    "EDITION_PUBLISHED",
    "INVALIDATING_EVENTS",
    "SIGNATURE_HEADER",
    "SNAPSHOT_PUBLISHED",
    "ContentEvent",
    "MalformedContentEvent",
    "parse_event",
    "sign",
    "valid_signature",
]

SIGNATURE_HEADER = "X-Amplience-Webhook-Signature"

CONTENT_ITEM_PUBLISHED = "dynamic-content.content-item.published"
CONTENT_ITEM_UPDATED = "dynamic-content.content-item.updated"
EDITION_PUBLISHED = "dynamic-content.edition.published"
SNAPSHOT_PUBLISHED = "dynamic-content.snapshot.published"
# Events after which the delivery API may serve a new version of the item. `updated` is in:
# dropping a cached item costs one fetch, keeping an outdated one costs a wrong page.
INVALIDATING_EVENTS = frozenset(
    {CONTENT_ITEM_PUBLISHED, CONTENT_ITEM_UPDATED, EDITION_PUBLISHED, SNAPSHOT_PUBLISHED}
)

MAX_DELIVERY_KEY_LENGTH = 1024  # far above Amplience's own limit; a sanity bound


class MalformedContentEvent(ValueError):
    """A field we rely on is missing or of the wrong type."""


@dataclass(frozen=True, slots=True)
class ContentEvent:
    name: str
    delivery_key: str | None  # None: the payload names no delivery key
    content_id: str | None = None


def sign(secret: str, body: bytes) -> str:
    """The `X-Amplience-Webhook-Signature` value of a body (for the fake and tests)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def valid_signature(secret: str, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    return hmac.compare_digest(
        sign(secret, body).encode(), header.strip().encode("utf-8", "replace")
    )


def parse_event(data: Any) -> ContentEvent:
    """The event's name, and for an invalidating event its delivery key (or None)."""
    if not isinstance(data, dict):
        raise MalformedContentEvent("a webhook body must be a JSON object")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise MalformedContentEvent("name: expected a string")
    name = name.strip()
    if name not in INVALIDATING_EVENTS:
        return ContentEvent(name, None)
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise MalformedContentEvent("payload: expected an object")
    content_id = payload.get("id")
    if content_id is not None and not isinstance(content_id, str):
        raise MalformedContentEvent("payload.id: expected a string")
    return ContentEvent(name, _delivery_key(payload), content_id)


def _delivery_key(payload: dict[str, Any]) -> str | None:
    body = payload.get("body")
    if body is not None and not isinstance(body, dict):
        raise MalformedContentEvent("payload.body: expected an object")
    meta = (body or {}).get("_meta")
    if meta is not None and not isinstance(meta, dict):
        raise MalformedContentEvent("payload.body._meta: expected an object")
    for where, value in (
        ("payload.body._meta.deliveryKey", (meta or {}).get("deliveryKey")),
        ("payload.deliveryKey", payload.get("deliveryKey")),
    ):
        if value is None:
            continue
        if not isinstance(value, str) or not 0 < len(value.strip()) <= MAX_DELIVERY_KEY_LENGTH:
            raise MalformedContentEvent(
                f"{where}: expected 1 to {MAX_DELIVERY_KEY_LENGTH} characters"
            )
        return value.strip()
    return None
