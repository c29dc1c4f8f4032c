"""The cost limit: an operation costing more than `PATRON_MAX_COST` (`gateway.limits.cost`)
is refused before it executes, with `COST_LIMIT_EXCEEDED` and its `cost`.

It is checked at the start of execution, where the variables are known (validation, and its
cache, is the same whatever `$first` is); raised there, the error ends the operation on
every transport (strawberry makes it the result, over HTTP and WebSocket alike). The costs
are kept in a small LRU by query text, operation and variables: the walk takes about 0.1 ms
for the member view, a lookup a microsecond.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import orjson
from strawberry.extensions import SchemaExtension

from gateway.limits.cost import operation_cost
from gateway.limits.errors import COST_LIMIT_EXCEEDED, limit_error

__all__ = ["CostLimit", "OperationCosts"]

Key = tuple[str, str | None, bytes]


class OperationCosts:
    """An LRU of operation costs, for one schema."""

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._costs: OrderedDict[Key, int] = OrderedDict()

    def get(self, key: Key) -> int | None:
        found = self._costs.get(key)
        if found is not None:
            self._costs.move_to_end(key)
        return found

    def put(self, key: Key, cost: int) -> None:
        self._costs[key] = cost
        self._costs.move_to_end(key)
        while len(self._costs) > self.maxsize:
            self._costs.popitem(last=False)


class CostLimit(SchemaExtension):
    def __init__(self, max_cost: int, costs: OperationCosts) -> None:
        self.max_cost = max_cost
        self.costs = costs

    def on_execute(self) -> Iterator[None]:
        cost = self.cost()
        if cost is not None and cost > self.max_cost:
            raise limit_error(
                COST_LIMIT_EXCEEDED,
                f"the operation costs {cost}; the limit is {self.max_cost} "
                "(each field 1, lists times their page size: ask for smaller pages)",
                cost=cost,
                maxCost=self.max_cost,
            )
        yield

    def cost(self) -> int | None:
        ctx = self.execution_context
        if ctx.graphql_document is None:
            return None
        key = self.key()
        known = self.costs.get(key) if key is not None else None
        if known is not None:
            return known
        cost = operation_cost(
            ctx.schema._schema, ctx.graphql_document, ctx.operation_name, ctx.variables
        )
        if key is not None:
            self.costs.put(key, cost)
        return cost

    def key(self) -> Key | None:
        ctx = self.execution_context
        if ctx.query is None:
            return None
        try:
            variables = orjson.dumps(ctx.variables or {}, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # not JSON (not from a request): costed every time
            return None
        return (ctx.query, ctx.operation_name, variables)
