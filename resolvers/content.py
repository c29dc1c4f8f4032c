from __future__ import annotations

from typing import Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from loyalty.errors import UpstreamError
from loyalty.upstreams import ContentItem
from resolvers.errors import upstream_error


@strawberry.type(description="A content item from the CMS.")
class Content:
    delivery_id: strawberry.ID
    delivery_key: str | None
    schema: str
    name: str | None
    fields: JSON = strawberry.field(
        description="The content item's own fields as delivered by the CMS."
    )
    image_url: str | None

    @classmethod
    def of(cls, item: ContentItem) -> Content:
        return cls(
            delivery_id=strawberry.ID(item.delivery_id),
            delivery_key=item.delivery_key,
            schema=item.schema,
            name=item.name,
            fields=cast(JSON, item.fields),
            image_url=item.image_url,
        )


async def load_content(info: Info[Any, Any], delivery_key: str) -> Content | None:
    """Content by delivery key through the request's loader; a CMS failure costs only this
    field (null, with an error naming the upstream)."""
    try:
        item = await info.context.loaders.content_by_key.load(delivery_key)
    except UpstreamError as exc:
        raise upstream_error(exc, info) from exc
    return Content.of(item) if item else None
