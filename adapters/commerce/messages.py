"""commercetools order messages (Platform format) and orders with their line items.

`parse_message` reads a message delivered by the subscription relay into the domain's
`CommerceMessage`; it raises `MalformedCommerceData` when a field we rely on is missing or of
the wrong type. Relied on:

- every message: `id` (the message id, what deliveries are deduplicated on), `type`;
- `OrderCreated`: `order` (a full Order, read with `parse_order`);
- `ReturnInfoAdded`: `resource.id` (the order id), `returnInfo.items[]`;
  `ReturnInfoSet`: `resource.id`, `returnInfo[].items[]` (the order's whole return list);
  a return item: `id`, `quantity`, and `lineItemId` (or `customLineItemId`); `createdAt`.

A notification that is not a message (`notificationType` `ResourceCreated`, ...) is `None`.

`CommercetoolsOrderDetails` reads one order with its line items and return info
(`GET /{projectKey}/orders/{id}`) through the gateway's `CommercetoolsClient`, so it shares
the client's token, policy and error mapping; the `Order` of the commerce port has no lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from adapters.commerce.client import (
    CommercetoolsClient,
    MalformedCommerceData,
    parse_datetime,
    parse_money,
    parse_order,
)
from loyalty.commerce_events import (
    CommerceMessage,
    OrderCreated,
    OrderDetail,
    OrderLine,
    OtherMessage,
    ReturnAnnounced,
    ReturnedItem,
)

MAX_ID_LENGTH = 255  # `webhook_deliveries.message_id`
RETURN_TYPES = frozenset({"ReturnInfoAdded", "ReturnInfoSet"})


def parse_message(data: Any) -> CommerceMessage | None:
    """A Platform-format message, or None for a notification that is not a message."""
    obj = _obj(data, "message")
    kind = obj.get("notificationType", "Message")
    if kind != "Message":
        return None
    message_id = _str(obj, "id")
    if not message_id.strip() or len(message_id) > MAX_ID_LENGTH:
        raise MalformedCommerceData(f"id: expected 1 to {MAX_ID_LENGTH} characters")
    message_type = _str(obj, "type")
    if message_type == "OrderCreated":
        return OrderCreated(message_id, parse_order(obj.get("order")))
    if message_type in RETURN_TYPES:
        resource = _obj(obj.get("resource"), "resource")
        if resource.get("typeId", "order") != "order":
            return OtherMessage(message_id, message_type)
        if message_type == "ReturnInfoAdded":
            infos = [obj.get("returnInfo")]
        else:
            infos = _list(obj.get("returnInfo", []), "returnInfo")
        items = tuple(
            _return_item(item)
            for i, info in enumerate(infos)
            for item in _list(_obj(info, f"returnInfo[{i}]").get("items"), "returnInfo.items")
        )
        created = obj.get("createdAt")
        return ReturnAnnounced(
            message_id=message_id,
            type=message_type,
            order_id=_str(resource, "id"),
            items=items,
            occurred_at=parse_datetime(created) if created is not None else None,
        )
    return OtherMessage(message_id, message_type)


def parse_order_detail(data: Any) -> OrderDetail:
    """An Order with its line items, custom line items and current return items."""
    obj = _obj(data, "order")
    order = parse_order(obj)
    lines = [_line(item, "lineItems") for item in _list(obj.get("lineItems"), "lineItems")]
    custom = obj.get("customLineItems") or []
    lines += [_line(item, "customLineItems") for item in _list(custom, "customLineItems")]
    returned = tuple(
        _return_item(item)
        for info in _list(obj.get("returnInfo") or [], "returnInfo")
        for item in _list(_obj(info, "returnInfo").get("items") or [], "returnInfo.items")
        if isinstance(item, Mapping) and isinstance(item.get("id"), str)
    )
    return OrderDetail(order=order, lines=tuple(lines), returned=returned)


class CommercetoolsOrderDetails:
    """`loyalty.commerce_events.OrderDetails` through the gateway's commercetools client."""

    def __init__(self, client: CommercetoolsClient) -> None:
        self.client = client

    async def order_detail(self, order_id: str) -> OrderDetail | None:
        response = await self.client._get(f"orders/{quote(order_id, safe='')}")
        if response.status_code == 404:
            return None
        body = self.client._ok_json(response)
        return self.client._parsed(parse_order_detail, body)


# --- helpers ------------------------------------------------------------------------------
def _return_item(data: Any) -> ReturnedItem:
    obj = _obj(data, "return item")
    line = obj.get("lineItemId", obj.get("customLineItemId"))
    if not isinstance(line, str) or not line:
        raise MalformedCommerceData("return item: expected lineItemId or customLineItemId")
    quantity = _int(obj, "quantity")
    if quantity <= 0:
        raise MalformedCommerceData(
            f"return item quantity: expected a positive number, got {quantity}"
        )
    return ReturnedItem(id=_str(obj, "id"), line_item_id=line, quantity=quantity)


def _line(data: Any, what: str) -> OrderLine:
    obj = _obj(data, what)
    quantity = _int(obj, "quantity")
    if quantity <= 0:
        raise MalformedCommerceData(f"{what}.quantity: expected a positive number")
    return OrderLine(
        id=_str(obj, "id"), quantity=quantity, total=parse_money(obj.get("totalPrice"))
    )


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedCommerceData(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedCommerceData(f"{what}: expected a list, got {type(value).__name__}")
    return value


def _str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedCommerceData(f"{key}: expected a string, got {value!r}")
    return value


def _int(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedCommerceData(f"{key}: expected an integer, got {value!r}")
    return value
