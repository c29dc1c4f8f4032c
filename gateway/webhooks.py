"""`POST /webhooks/commerce`: commercetools order messages (Platform format), relayed by HTTP.

The relay signs the raw body: `X-Patron-Signature: sha256=<hex HMAC-SHA256>` with the shared
`PATRON_WEBHOOK_SECRET`. Answers (JSON):

- 200 `{"status": "recorded" | "returned" | "ignored" | "duplicate" | "rejected", ...}`: the
  message was handled (or had been: `duplicate`), and must not be sent again. `rejected`
  (with a `code`) is a message the loyalty rules refuse; retrying would not change that.
- 400 `MALFORMED_MESSAGE` (not JSON, or a field we rely on is missing): nothing written.
- 401 `INVALID_SIGNATURE`, 413 `PAYLOAD_TOO_LARGE`, 503 `WEBHOOK_NOT_CONFIGURED`.
- 503 `UPSTREAM_UNAVAILABLE` / `UPSTREAM_TIMEOUT` (a return needs the order from commerce):
  nothing recorded, the relay should retry.

`OrderCreated` is answered without any upstream call. The domain rules are in
`loyalty.commerce_events`.
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

from adapters.cache.cached_orders import CachedOrders
from adapters.commerce.client import CommercetoolsClient, MalformedCommerceData
from adapters.commerce.messages import CommercetoolsOrderDetails, parse_message
from adapters.db.deliveries import SqlDeliveryLog, SqlRecordedOrders
from gateway.signed_requests import error_response, verified_body
from loyalty.commerce_events import CommerceEvents, OrderDetail, Outcome, Status
from loyalty.errors import UpstreamError, UpstreamUnavailable
from loyalty.ports import CommercePort

if TYPE_CHECKING:
    from gateway.app import Gateway
    from resolvers.context import Services

log = logging.getLogger("patron.webhooks")

SIGNATURE_HEADER = "x-patron-signature"
SIGNATURE_SCHEME = "sha256"


def sign(secret: str, body: bytes) -> str:
    """The `X-Patron-Signature` value of a body (for relays and tests)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_SCHEME}={digest}"


def valid_signature(secret: str, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    scheme, _, provided = header.strip().partition("=")
    if scheme.strip().lower() != SIGNATURE_SCHEME:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(
        expected.encode(), provided.strip().lower().encode("utf-8", "replace")
    )


def commerce_events(services: Services, engine: AsyncEngine) -> CommerceEvents:
    """The webhook's service, on the app's ledger, store and commerce client."""
    return CommerceEvents(
        ledger=services.ledger,
        members=services.store.reader,
        recorded=SqlRecordedOrders(engine),
        deliveries=SqlDeliveryLog(engine),
        orders=_order_details(services.commerce),
        clock=services.clock,
    )


async def commerce_webhook(request: Request) -> JSONResponse:
    gateway: Gateway = request.app.state.gateway
    body = await verified_body(
        request,
        gateway.settings.webhook_secret,
        setting="PATRON_WEBHOOK_SECRET",
        header=SIGNATURE_HEADER,
        verify=valid_signature,
    )
    if isinstance(body, JSONResponse):
        return body
    try:
        message = parse_message(json.loads(body))
    except (ValueError, MalformedCommerceData) as exc:  # JSONDecodeError, UnicodeDecodeError
        return error_response(400, "MALFORMED_MESSAGE", f"not a commercetools order message: {exc}")
    if message is None:
        return JSONResponse({"status": Status.IGNORED.value, "reason": "not a message"})
    try:
        outcome = await commerce_events(gateway.services, gateway.engine).handle(message)
    except UpstreamError as exc:
        log.warning("commerce message %s not handled: %s", message.message_id, exc)
        body_ = {"code": exc.code, "message": str(exc), "upstream": exc.upstream}
        return JSONResponse({"error": body_}, status_code=503, headers={"Retry-After": "30"})
    log.info(
        "commerce message %s (%s): %s %s",
        message.message_id,
        type(message).__name__,
        outcome.status.value,
        outcome.reason or "",
    )
    return JSONResponse(_answer(outcome))


def _answer(outcome: Outcome) -> dict[str, Any]:
    answer: dict[str, Any] = {"status": outcome.status.value}
    if outcome.status is Status.REJECTED:
        answer["code"] = outcome.reason
        answer["message"] = outcome.message
    elif outcome.reason:
        answer["reason"] = outcome.reason
    if outcome.order_id is not None:
        answer["orderId"] = outcome.order_id
    if outcome.transaction_id is not None:
        answer["transactionId"] = outcome.transaction_id
    return answer


class _NoOrderDetails:
    """When the commerce port is not the commercetools client (it cannot read line items)."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def order_detail(self, order_id: str) -> OrderDetail | None:
        raise UpstreamUnavailable(self.name, "this commerce adapter cannot read order lines")


def _order_details(commerce: CommercePort) -> CommercetoolsOrderDetails | _NoOrderDetails:
    if isinstance(commerce, CachedOrders):
        commerce = commerce.inner  # a return needs the order as it is now: never cached
    if isinstance(commerce, CommercetoolsClient):
        return CommercetoolsOrderDetails(commerce)
    return _NoOrderDetails(commerce.name)
