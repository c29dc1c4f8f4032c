from __future__ import annotations

import asyncio
from typing import NamedTuple, cast

from loyalty.ports import CommercePort
from loyalty.upstreams import Order
from resolvers.loaders.upstream_batch import UpstreamBatchLoader


class OrdersKey(NamedTuple):
    customer_id: str
    limit: int


class OrdersByCustomerIdLoader(UpstreamBatchLoader[OrdersKey, list[Order]]):
    """A customer's newest orders. commercetools has no per-customer limit in one query, so
    the customers of a batch are asked concurrently, one call each."""

    def __init__(self, commerce: CommercePort) -> None:
        super().__init__()
        self.commerce = commerce

    async def batch_load_fn(self, keys: list[OrdersKey]) -> list[list[Order]]:
        pages = await asyncio.gather(
            *(self.commerce.orders(k.customer_id, limit=k.limit) for k in keys),
            return_exceptions=True,
        )
        # aiodataloader fails just the keys whose value is an exception.
        return cast(
            list[list[Order]],
            [p if isinstance(p, BaseException) else list(p.orders) for p in pages],
        )
