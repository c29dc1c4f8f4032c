"""What the gateway reads from the systems it does not own, as plain values.

Adapters translate each vendor's wire format into these; nothing here knows a vendor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loyalty.money import Money


# --- commerce (carts and orders) ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CartLine:
    sku: str
    name: str
    quantity: int
    unit_price: Money
    total: Money
    image_url: str | None = None


@dataclass(frozen=True, slots=True)
class Cart:
    id: str
    customer_id: str
    total: Money
    lines: tuple[CartLine, ...]
    state: str = "Active"
    last_modified_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    customer_id: str | None
    total: Money
    created_at: datetime
    state: str
    order_number: str | None = None
    customer_email: str | None = None
    payment_state: str | None = None


@dataclass(frozen=True, slots=True)
class OrderPage:
    orders: tuple[Order, ...]
    total: int
    offset: int


# --- content (CMS) ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ContentItem:
    delivery_id: str
    delivery_key: str | None
    schema: str
    name: str | None
    fields: dict[str, Any]
    image_url: str | None = None


# --- profile (CDP) ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Profile:
    user_id: str
    traits: dict[str, Any]
    audiences: tuple[str, ...] = field(default_factory=tuple)

    @property
    def first_name(self) -> str | None:
        return _text(self.traits.get("first_name") or self.traits.get("firstName"))

    @property
    def last_name(self) -> str | None:
        return _text(self.traits.get("last_name") or self.traits.get("lastName"))

    @property
    def email(self) -> str | None:
        return _text(self.traits.get("email"))

    @property
    def birthday(self) -> str | None:
        return _text(self.traits.get("birthday"))


@dataclass(frozen=True, slots=True)
class ExternalId:
    id: str
    type: str
    source_id: str | None = None
    created_at: str | None = None


@dataclass(frozen=True, slots=True)
class TrackEvent:
    """A Segment-style track event the gateway sends out (points earned, tier changed)."""

    user_id: str
    event: str
    properties: dict[str, Any]
    timestamp: datetime
    message_id: str


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
