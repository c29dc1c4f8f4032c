"""Money: `Decimal` amounts with the currency's own number of fraction digits.

Never floats. Amounts cross the API as strings with exactly the currency's fraction digits
("330.00" CAD, "12000" JPY, "1.500" BHD).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

# ISO 4217 minor units for the currencies whose fraction digits are not 2.
_FRACTION_DIGITS_NOT_TWO: dict[str, int] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}  # fmt: skip

# The ISO 4217 codes Patron accepts. A program or a purchase in another code is refused.
_CODES = (
    "AED AUD BGN BHD BRL CAD CHF CLP CNY CZK DKK EUR GBP HKD HUF IDR ILS INR ISK JOD JPY "
    "KRW KWD MXN MYR NOK NZD OMR PHP PLN QAR RON SAR SEK SGD THB TND TRY TWD USD VND ZAR"
)
KNOWN_CURRENCIES: frozenset[str] = frozenset(_CODES.split())


class InvalidMoney(ValueError):
    """An amount or currency code that cannot be money."""


def fraction_digits(currency: str) -> int:
    """The number of fraction digits of an ISO 4217 currency (2 unless listed otherwise)."""
    return _FRACTION_DIGITS_NOT_TWO.get(currency, 2)


def check_currency(currency: str) -> str:
    if currency not in KNOWN_CURRENCIES:
        raise InvalidMoney(f"unknown currency code {currency!r}")
    return currency


# No sale, return or spending rule comes near it; beyond it, Decimal's context cannot
# quantize a value to minor units (1e999999 is a decimal, not an amount).
MAX_AMOUNT = Decimal(10) ** 12


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    @classmethod
    def of(cls, amount: str | Decimal | int, currency: str) -> Money:
        """Money from a decimal string, refusing more fraction digits than the currency has."""
        check_currency(currency)
        try:
            value = Decimal(amount)
        except (InvalidOperation, TypeError) as exc:
            raise InvalidMoney(f"not a decimal amount: {amount!r}") from exc
        if not value.is_finite():
            raise InvalidMoney(f"not a finite amount: {amount!r}")
        if abs(value) >= MAX_AMOUNT:
            raise InvalidMoney(f"{amount} is beyond the largest amount ({MAX_AMOUNT:,})")
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)
        if -exponent > fraction_digits(currency) and value != value.quantize(_quantum(currency)):
            raise InvalidMoney(
                f"{amount} has more fraction digits than {currency} allows "
                f"({fraction_digits(currency)})"
            )
        return cls(value.quantize(_quantum(currency)), currency)

    @classmethod
    def from_minor(cls, minor: int, currency: str, digits: int | None = None) -> Money:
        """Money from integer minor units (commercetools `centAmount` + `fractionDigits`)."""
        d = fraction_digits(currency) if digits is None else digits
        return cls(Decimal(minor).scaleb(-d).quantize(_quantum(currency)), currency)

    @property
    def minor(self) -> int:
        return int(self.amount.scaleb(fraction_digits(self.currency)))

    def formatted_amount(self) -> str:
        """The amount with exactly the currency's fraction digits: "330.00", "12000"."""
        return f"{self.amount.quantize(_quantum(self.currency)):f}"

    def rounded(self) -> Money:
        return Money(self.amount.quantize(_quantum(self.currency), ROUND_HALF_EVEN), self.currency)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise InvalidMoney(f"cannot combine {self.currency} and {other.currency}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0).quantize(_quantum(currency)), currency)


def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-fraction_digits(currency))
