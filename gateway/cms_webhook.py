"""`POST /webhooks/cms`: Amplience publish events drop the cached content of the item's
delivery key, so the next view fetches the new version.

Amplience signs the raw body: `X-Amplience-Webhook-Signature: <base64 HMAC-SHA256>` with
`PATRON_CMS_WEBHOOK_SECRET` (the wire format we rely on: `adapters.cms.events`). The
handler reads no database and calls no upstream (not the CMS either: the next read fetches),
so it answers at once, and it is idempotent: a repeated event drops the entry again.
Invalidation goes through the cache store, so with Redis it reaches every replica. Answers
(JSON):

- 200 `{"status": "invalidated", "deliveryKey": "..."}`;
- 200 `{"status": "ignored", "reason": "unhandled_event" | "no_delivery_key" | "no_cache"}`;
- 400 `MALFORMED_MESSAGE` (not JSON, or a field we rely on is of the wrong type);
- 401 `INVALID_SIGNATURE`, 413 `PAYLOAD_TOO_LARGE`, 503 `WEBHOOK_NOT_CONFIGURED`.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse

from adapters.cache.cached_ports import CachedContent
from adapters.cms.events import (
    INVALIDATING_EVENTS,
    SIGNATURE_HEADER,
    MalformedContentEvent,
    parse_event,
    valid_signature,
)
from gateway.signed_requests import error_response, verified_body

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger("patron.webhooks")


async def cms_webhook(request: Request) -> JSONResponse:
    gateway: Gateway = request.app.state.gateway
    body = await verified_body(
        request,
        gateway.settings.cms_webhook_secret,
        setting="PATRON_CMS_WEBHOOK_SECRET",
        header=SIGNATURE_HEADER,
        verify=valid_signature,
    )
    if isinstance(body, JSONResponse):
        return body
    try:
        event = parse_event(json.loads(body))
    except (ValueError, MalformedContentEvent) as exc:  # JSONDecodeError, UnicodeDecodeError
        return error_response(400, "MALFORMED_MESSAGE", f"not an Amplience webhook: {exc}")
    if event.name not in INVALIDATING_EVENTS:
        return _ignored(event.name, "unhandled_event")
    if event.delivery_key is None:
        return _ignored(event.name, "no_delivery_key")
    cms = gateway.services.cms
    if not isinstance(cms, CachedContent):
        return _ignored(event.name, "no_cache")
    await cms.invalidate_content([event.delivery_key])
    log.info(
        "CMS %s (item %s): cached content of %r invalidated",
        event.name,
        event.content_id,
        event.delivery_key,
    )
    return JSONResponse({"status": "invalidated", "deliveryKey": event.delivery_key})


def _ignored(name: str, reason: str) -> JSONResponse:
    log.info("CMS %s: ignored (%s)", name, reason)
    return JSONResponse({"status": "ignored", "reason": reason})
