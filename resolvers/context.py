"""The per-request context every resolver receives: who is asking, the services, and a
fresh set of DataLoaders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from graphql import GraphQLError

from loyalty.access import Viewer
from loyalty.households import HouseholdService
from loyalty.ledger import LedgerService
from loyalty.members import MemberService
from loyalty.ports import Broker, CommercePort, ContentPort, ProfilePort
from loyalty.privacy import PrivacyService
from loyalty.program import Program
from loyalty.store import LoyaltyStore
from loyalty.tier_service import TierService
from resolvers.loaders import Loaders


@dataclass(frozen=True, slots=True)
class Services:
    """Long-lived dependencies, built once in the gateway's lifespan."""

    program: Program
    store: LoyaltyStore
    commerce: CommercePort
    cms: ContentPort
    cdp: ProfilePort
    members: MemberService
    ledger: LedgerService
    households: HouseholdService
    tiers: TierService  # assignTier, the held tier, the end-of-period review
    card_secret: str
    clock: Callable[[], datetime]
    broker: Broker  # live updates (subscriptions): in process, or Redis across replicas
    privacy: PrivacyService  # forgetMember, memberExport, the CDP deletion queue


@dataclass(slots=True)
class Context:
    viewer: Viewer
    services: Services
    loaders: Loaders
    request: Any = None
    response: Any = None
    # Errors about fields that still return a value (a non-null list whose upstream failed):
    # the `SoftErrors` extension adds them to the response's `errors`.
    soft_errors: list[GraphQLError] = field(default_factory=list)
    # The `connection_init` payload of a WebSocket (strawberry sets it); see `on_ws_connect`.
    connection_params: dict[str, Any] | None = None

    @classmethod
    def build(
        cls, viewer: Viewer, services: Services, request: Any = None, response: Any = None
    ) -> Context:
        return cls(viewer, services, Loaders.build(services), request, response)
