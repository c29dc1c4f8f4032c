"""The federated Query root: Patron's Query plus federation's `_service { sdl }`.

strawberry would add `_service` itself, printing the schema at each call; here it answers
the SDL printed once when the federated schema was built (`gateway.federation`), the only
moment `Member` carries its `@key` directives.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from resolvers.query import Query


@strawberry.type(name="_Service")
class FederationService:
    sdl: str


@strawberry.type(name="Query")
class FederatedQuery(Query):
    @strawberry.field(name="_service")
    def federation_service(self, info: Info[Any, Any]) -> FederationService:
        return FederationService(sdl=info.schema.as_str())
