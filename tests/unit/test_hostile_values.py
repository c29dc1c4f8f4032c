"""The values the fuzzer found that once broke the gateway (tests/graphql/test_fuzz.py),
each pinned at the function that now refuses it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.nul_strings import holds_nul
from loyalty.card import card_code, member_id_from_card
from loyalty.money import MAX_AMOUNT, InvalidMoney, Money
from resolvers.node import MAX_SERIAL, serial_number


@pytest.mark.parametrize("amount", ["1e999999", "9" * 40, str(MAX_AMOUNT), f"-{MAX_AMOUNT}"])
def test_an_amount_decimal_cannot_quantize_is_invalid_money(amount: str) -> None:
    with pytest.raises(InvalidMoney):
        Money.of(amount, "CAD")


def test_the_largest_amount_is_just_below_the_bound() -> None:
    assert Money.of("999999999999.99", "CAD").amount == Decimal("999999999999.99")


def test_a_card_code_with_a_non_ascii_signature_does_not_verify() -> None:
    code = card_code("m-1", "secret")
    assert member_id_from_card(code, "secret") == "m-1"
    assert member_id_from_card(code[:-1] + "ç", "secret") is None
    assert member_id_from_card(code[:-1] + "\U0001f642", "secret") is None


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0", 0),
        ("42", 42),
        (str(MAX_SERIAL), 2_147_483_647),
        (str(MAX_SERIAL + 1), None),
        ("99999999999999999999", None),
        ("²", None),  # str.isdigit() is true, int() fails
        ("١٢", None),  # Arabic-Indic digits: int() reads 12, no id of ours is written so
        ("-1", None),
        ("", None),
        (" 1", None),
    ],
)
def test_serial_numbers_are_ascii_digits_in_range(text: str, number: int | None) -> None:
    assert serial_number(text) == number


def test_holds_nul_looks_at_every_string_keys_included() -> None:
    assert holds_nul({"a": [{"b": "x\x00"}]})
    assert holds_nul({"k\x00": 1})
    assert not holds_nul({"a": ["x", 1, None, {"b": 2.5}]})
    assert not holds_nul(None)
