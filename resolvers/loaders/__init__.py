"""DataLoaders: one per file, named `<Result>By<Key>Loader`, a fresh set per request.

No resolver reads the database or an upstream directly: it asks a loader, so N members in
a list cost one query per table and one call per upstream batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from resolvers.loaders.balance_by_member_id import BalanceByMemberIdLoader
from resolvers.loaders.cart_by_customer_id import CartByCustomerIdLoader
from resolvers.loaders.content_by_key import ContentByKeyLoader
from resolvers.loaders.household_by_id import HouseholdByIdLoader
from resolvers.loaders.household_by_member_id import HouseholdByMemberIdLoader
from resolvers.loaders.household_invitations_by_household_id import (
    HouseholdInvitationsByHouseholdIdLoader,
)
from resolvers.loaders.household_invitations_by_member_id import (
    HouseholdInvitationsByMemberIdLoader,
)
from resolvers.loaders.insights_by_member_id import InsightsByMemberIdLoader
from resolvers.loaders.member_by_commerce_id import MemberByCommerceIdLoader
from resolvers.loaders.member_by_id import MemberByIdLoader
from resolvers.loaders.offers_by_member_id import OffersByMemberIdLoader
from resolvers.loaders.orders_by_customer_id import OrdersByCustomerIdLoader
from resolvers.loaders.profile_by_user_id import ProfileByUserIdLoader
from resolvers.loaders.tier_status_by_member_id import TierStatusByMemberIdLoader
from resolvers.loaders.transaction_by_id import TransactionByIdLoader
from resolvers.loaders.transactions_by_member_id import TransactionsByMemberIdLoader

if TYPE_CHECKING:
    from resolvers.context import Services


@dataclass(frozen=True, slots=True)
class Loaders:
    member_by_id: MemberByIdLoader
    member_by_commerce_id: MemberByCommerceIdLoader
    balance_by_member_id: BalanceByMemberIdLoader
    transactions_by_member_id: TransactionsByMemberIdLoader
    transaction_by_id: TransactionByIdLoader
    tier_status_by_member_id: TierStatusByMemberIdLoader
    household_by_member_id: HouseholdByMemberIdLoader
    household_by_id: HouseholdByIdLoader
    household_invitations_by_member_id: HouseholdInvitationsByMemberIdLoader
    household_invitations_by_household_id: HouseholdInvitationsByHouseholdIdLoader
    offers_by_member_id: OffersByMemberIdLoader
    cart_by_customer_id: CartByCustomerIdLoader
    orders_by_customer_id: OrdersByCustomerIdLoader
    content_by_key: ContentByKeyLoader
    profile_by_user_id: ProfileByUserIdLoader
    insights_by_member_id: InsightsByMemberIdLoader

    @classmethod
    def build(cls, services: Services) -> Loaders:
        reader = services.store.request_reader()
        households = HouseholdByMemberIdLoader(reader)
        return cls(
            member_by_id=MemberByIdLoader(reader),
            member_by_commerce_id=MemberByCommerceIdLoader(reader),
            balance_by_member_id=BalanceByMemberIdLoader(
                reader, services.program, services.clock, households
            ),
            transactions_by_member_id=TransactionsByMemberIdLoader(reader),
            transaction_by_id=TransactionByIdLoader(reader),
            tier_status_by_member_id=TierStatusByMemberIdLoader(
                reader, services.program, services.clock, households
            ),
            household_by_member_id=households,
            household_by_id=HouseholdByIdLoader(reader),
            household_invitations_by_member_id=HouseholdInvitationsByMemberIdLoader(
                reader, services.clock
            ),
            household_invitations_by_household_id=HouseholdInvitationsByHouseholdIdLoader(
                reader, services.clock
            ),
            offers_by_member_id=OffersByMemberIdLoader(reader, services.clock),
            cart_by_customer_id=CartByCustomerIdLoader(services.commerce),
            orders_by_customer_id=OrdersByCustomerIdLoader(services.commerce),
            content_by_key=ContentByKeyLoader(services.cms),
            profile_by_user_id=ProfileByUserIdLoader(services.cdp),
            insights_by_member_id=InsightsByMemberIdLoader(
                reader, services.program, services.clock
            ),
        )
