from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.types import Info

from loyalty.models import Offer as DomainOffer
from loyalty.models import OfferKind as DomainOfferKind
from resolvers.content import Content, load_content
from resolvers.node import Node, to_global_id

OfferKind = strawberry.enum(DomainOfferKind, name="OfferKind")


@strawberry.type
class Offer(Node):
    id: strawberry.ID
    kind: OfferKind  # type: ignore[valid-type]
    title: str
    code: str | None
    discount_percent: Decimal | None
    bonus_points: int | None
    valid_until: datetime | None
    _content_key: strawberry.Private[str]

    @strawberry.field(description="Banner and copy from the CMS (delivery key offers/<key>).")
    async def content(self, info: Info[Any, Any]) -> Content | None:
        return await load_content(info, self._content_key)

    @classmethod
    def of(cls, offer: DomainOffer) -> Offer:
        return cls(
            id=to_global_id("Offer", offer.id),
            kind=offer.kind,
            title=offer.title,
            code=offer.code,
            discount_percent=offer.discount_percent,
            bonus_points=offer.bonus_points,
            valid_until=offer.valid_until,
            _content_key=offer.content_key,
        )
