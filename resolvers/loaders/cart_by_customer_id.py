from __future__ import annotations

from loyalty.ports import CommercePort
from loyalty.upstreams import Cart
from resolvers.loaders.upstream_batch import UpstreamBatchLoader


class CartByCustomerIdLoader(UpstreamBatchLoader[str, Cart | None]):
    """Active carts of all the customers in a query: one commerce call per batch."""

    def __init__(self, commerce: CommercePort) -> None:
        super().__init__()
        self.commerce = commerce

    async def batch_load_fn(self, keys: list[str]) -> list[Cart | None]:
        carts = await self.commerce.active_carts(keys)
        return [carts.get(k) for k in keys]
