"""Apollo Federation 2: with `PATRON_FEDERATION=true` the schema is also a subgraph.

`Member` is an entity keyed by `id` and by `externalIds { commerceCustomerId }` (the id a
storefront's login knows), so a company's router can join its own subgraphs to members.
`_entities` resolves references under `member(id)`'s rules (`resolvers.entities`).

The keys belong to the federated schema only: with federation off the schema, and the
committed `schema.graphql`, stay exactly as they are. strawberry reads a type's directives
from the one definition of its class, so the keys are attached to `Member`'s definition
while the federated schema is built, under a lock that every schema build takes, and taken
off again. Everything that needs them is decided during the build (the `_Entity` union,
the `@link` imports, the directive definitions) except printing, so the SDL is printed
then and kept: `_service { sdl }` and `patron export-schema --federation` answer it.

With `PATRON_ENV=prod` there is no introspection, and `_service { sdl }` is the whole
schema: it is refused too (`NoSubgraphSchemaRule`). Routers then compose from the committed
`schema.federation.graphql` (a schema registry, `rover supergraph compose`), as Apollo and
Hive advise for production; `_entities` is served as always.
"""

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, cast

import strawberry
from graphql import FieldNode, GraphQLError, ValidationRule
from strawberry.federation.schema import FederationAny
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet
from strawberry.printer import print_schema
from strawberry.types import Info
from strawberry.types.base import get_object_definition
from strawberry.types.unset import UNSET

from resolvers.entities import resolve_entities
from resolvers.federation import FederatedQuery
from resolvers.members import Member

# The oldest Federation 2 version with everything used here (`@key`): any Federation 2
# router composes it.
FEDERATION_VERSION: Literal["2.0"] = "2.0"
MEMBER_KEYS = ("id", "externalIds { commerceCustomerId }")

# Held by every schema build, and by printing a plain schema: neither may see the keys of a
# federated build under way in another thread. Reentrant: `schema_sdl` holds it to build
# and print.
SCHEMA_BUILD_LOCK = threading.RLock()


@contextmanager
def _member_keys() -> Iterator[None]:
    definition = get_object_definition(Member, strict=True)
    plain = definition.directives
    keys = (Key(fields=FieldSet(key), resolvable=UNSET) for key in MEMBER_KEYS)
    definition.directives = (*(plain or ()), *keys)
    try:
        yield
    finally:
        definition.directives = plain


class FederatedSchema(strawberry.federation.Schema):
    """Patron's schema as a Federation 2 subgraph. Build it with `SCHEMA_BUILD_LOCK` held."""

    def __init__(self, *, mutation: type, subscription: type, extensions: Sequence[Any]) -> None:
        with _member_keys():
            super().__init__(
                query=FederatedQuery,
                mutation=mutation,
                subscription=subscription,
                extensions=extensions,
                federation_version=FEDERATION_VERSION,
            )
            self._sdl = print_schema(self)

    def as_str(self) -> str:
        return self._sdl

    __str__ = as_str

    # strawberry's resolver would call a `resolve_reference` per representation and fail the
    # whole field on an unknown __typename; this one validates each representation and
    # resolves them concurrently, so that the loaders batch them (async: hence the ignore).
    async def entities_resolver(  # type: ignore[override]
        self, info: Info[Any, Any], representations: list[FederationAny]
    ) -> list[FederationAny]:
        return cast(list[FederationAny], await resolve_entities(info, representations))


class NoSubgraphSchemaRule(ValidationRule):
    """Production: `_service` is refused like `__schema`, before anything executes."""

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        parent = self.context.get_parent_type()
        if node.name.value == "_service" and parent is not None and parent.name == "Query":
            self.report_error(
                GraphQLError(
                    "the subgraph schema (_service) is not served when PATRON_ENV=prod: "
                    "compose from schema.federation.graphql",
                    node,
                )
            )
