from __future__ import annotations

from decimal import Decimal

import strawberry

from loyalty.money import Money as DomainMoney


@strawberry.type(description="An amount of money in one currency.")
class Money:
    amount: Decimal = strawberry.field(
        description='A decimal string with the currency\'s fraction digits: "120.50".'
    )
    currency_code: str = strawberry.field(description="ISO 4217")

    @classmethod
    def of(cls, money: DomainMoney) -> Money:
        return cls(amount=money.amount, currency_code=money.currency)


@strawberry.input
class MoneyInput:
    amount: Decimal
    currency_code: str
