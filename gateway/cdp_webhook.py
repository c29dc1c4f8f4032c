"""`POST /webhooks/cdp`: Segment webhook events (a Segment webhook destination).

Segment signs the raw body: `X-Signature: <hex HMAC-SHA1>` with the shared
`PATRON_CDP_WEBHOOK_SECRET`, and expects an answer within 5 s (it retries otherwise), so the
handler does short database transactions and no upstream call, except that an erasure then
asks Segment to delete the user (one call under the upstream policy; queued for the
`cdp-deletions` job if it fails). Answers (JSON):

- 200 `{"status": "granted" | "forgotten" | "ignored" | "duplicate" | "rejected", ...}`:
  handled (or handled before: `duplicate`), Segment must not send it again. `ignored` carries
  a `reason` (`not_a_member`, `already_granted`, `traits_read_from_cdp`, `unhandled_event`,
  `no_newsletter_offer`); `rejected` a `code` and `message` (a `delete` of the owner of a
  household with other members: `NOT_ALLOWED`, for staff to resolve; logged as a warning).
- 202 `{"status": "accepted", "reason": "erasure_not_automated"}`: a `delete` event when no
  erasure service is wired in (not the case in this gateway).
- 400 `MALFORMED_EVENT` (not JSON, or `type`/`messageId` missing): nothing written.
- 401 `INVALID_SIGNATURE`, 413 `PAYLOAD_TOO_LARGE`, 503 `WEBHOOK_NOT_CONFIGURED`.

The rules are in `loyalty.cdp_events` (which events do what) and `loyalty.offer_service`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse

from adapters.cache.cached_ports import CachedProfiles
from adapters.cdp.events import MalformedCdpEvent, parse_event
from adapters.db.deliveries import SqlDeliveryLog
from gateway.signed_requests import error_response, verified_body
from loyalty.cdp_events import CdpEvents, Outcome, Status
from loyalty.offer_service import OfferService

if TYPE_CHECKING:
    from gateway.app import Gateway
    from resolvers.context import Services

log = logging.getLogger("patron.webhooks")

SIGNATURE_HEADER = "x-signature"


def sign(secret: str, body: bytes) -> str:
    """The `X-Signature` value Segment sends with a body (for tests and tools)."""
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def valid_signature(secret: str, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    return hmac.compare_digest(
        sign(secret, body).encode(), header.strip().lower().encode("utf-8", "replace")
    )


def offer_service(services: Services) -> OfferService:
    """The offers service on the app's store, program, clock, ledger and CDP client."""
    return OfferService(
        services.store, services.program, services.clock, services.ledger, services.cdp
    )


def cdp_events(services: Services, engine: AsyncEngine) -> CdpEvents:
    return CdpEvents(
        offer_service(services),
        SqlDeliveryLog(engine),
        services.clock,
        forget=services.privacy.forget_cdp_user,
    )


async def cdp_webhook(request: Request) -> JSONResponse:
    gateway: Gateway = request.app.state.gateway
    body = await verified_body(
        request,
        gateway.settings.cdp_webhook_secret,
        setting="PATRON_CDP_WEBHOOK_SECRET",
        header=SIGNATURE_HEADER,
        verify=valid_signature,
    )
    if isinstance(body, JSONResponse):
        return body
    try:
        event = parse_event(json.loads(body))
    except (ValueError, MalformedCdpEvent) as exc:  # JSONDecodeError, UnicodeDecodeError
        return error_response(400, "MALFORMED_EVENT", f"not a Segment event: {exc}")
    if (
        event.type == "identify"
        and event.user_id
        and isinstance(gateway.services.cdp, CachedProfiles)
    ):
        await gateway.services.cdp.invalidate_profile(event.user_id)  # the traits changed
    outcome = await cdp_events(gateway.services, gateway.engine).handle(event)
    if outcome.status in (Status.ACCEPTED, Status.REJECTED):
        log.warning(
            "CDP %s event %s for user %s: not acted on (%s)",
            event.type,
            event.message_id,
            event.user_id,
            outcome.reason,
        )
    else:
        log.info(
            "CDP %s event %s: %s %s",
            event.type,
            event.message_id,
            outcome.status.value,
            outcome.reason or "",
        )
    return JSONResponse(
        _answer(outcome), status_code=202 if outcome.status is Status.ACCEPTED else 200
    )


def _answer(outcome: Outcome) -> dict[str, Any]:
    answer: dict[str, Any] = {"status": outcome.status.value}
    if outcome.status is Status.REJECTED:
        answer["code"] = outcome.reason
        answer["message"] = outcome.message
    elif outcome.reason:
        answer["reason"] = outcome.reason
    return answer
