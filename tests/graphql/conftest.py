from __future__ import annotations

from typing import Any

from tests.conftest import Harness, token

ENROLL = """
mutation($input: EnrollMemberInput!) {
  enrollMember(input: $input) { member { id } userErrors { code field message } }
}
"""

RECORD = """
mutation($input: RecordPurchaseInput!) {
  recordPurchase(input: $input) {
    transaction { id kind points status orderId channel }
    member { id points { available pending lifetimeEarned } }
    userErrors { code field message }
  }
}
"""


async def enroll(h: Harness, commerce_id: str, **extra: Any) -> str:
    """Enrol a customer as a service would; returns the member's global id."""
    body = await h.gql(
        ENROLL,
        {"input": {"commerceCustomerId": commerce_id, **extra}},
        token("svc", "service"),
    )
    payload = body["data"]["enrollMember"]
    assert payload["userErrors"] == [], payload
    member_id: str = payload["member"]["id"]
    return member_id


async def purchase(
    h: Harness,
    member_id: str,
    order_id: str,
    amount: str,
    currency: str = "CAD",
    key: str | None = None,
    channel: str = "POS",
) -> dict[str, Any]:
    body = await h.gql(
        RECORD,
        {
            "input": {
                "memberId": member_id,
                "orderId": order_id,
                "total": {"amount": amount, "currencyCode": currency},
                "channel": channel,
                "idempotencyKey": key or f"purchase-{order_id}",
            }
        },
        token("svc", "service"),
    )
    result: dict[str, Any] = body["data"]["recordPurchase"]
    return result
