"""A loyalty program as configuration: the program file (TOML) and its rules.

`load_program(path)` reads and validates a program file; an invalid one raises
`ProgramError` naming the file and the setting at fault, and the gateway refuses to start.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loyalty.money import KNOWN_CURRENCIES

TIER_BASES = ("spend_rolling_12m", "spend_calendar_year")


class ProgramError(ValueError):
    """A program file that cannot run: says which file, which setting and why."""


@dataclass(frozen=True, slots=True)
class Tier:
    key: str
    name: str
    rank: int
    min_spend: Decimal
    earn_multiplier: Decimal
    discount_percent: Decimal
    hidden: bool
    benefits: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Charity:
    key: str
    name: str


@dataclass(frozen=True, slots=True)
class AssociateAwardLimits:
    max_points_per_award: int = 500
    max_points_per_day: int = 2000


@dataclass(frozen=True, slots=True)
class Program:
    key: str
    name: str
    currency: str
    points_name: str
    points_per_currency_unit: Decimal
    redemption_points_per_currency_unit: int
    pending_days: int
    expiry_months: int
    tier_basis: str
    timezone: str
    tiers: tuple[Tier, ...]
    fx: Mapping[str, Decimal] = field(default_factory=dict)
    associate_awards: AssociateAwardLimits = AssociateAwardLimits()
    gifting_max_points_per_day: int = 5000
    household_max_members: int = 4
    charities: tuple[Charity, ...] = ()
    birthday_bonus_points: int = 0
    birthday_discount_percent: Decimal = Decimal(0)
    newsletter_discount_percent: Decimal = Decimal(0)
    referrer_points: int = 0
    referee_points: int = 0

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def public_tiers(self) -> tuple[Tier, ...]:
        return tuple(t for t in self.tiers if not t.hidden)

    @property
    def entry_tier(self) -> Tier:
        return self.public_tiers[0]

    def tier(self, key: str) -> Tier | None:
        return next((t for t in self.tiers if t.key == key), None)

    def charity(self, key: str) -> Charity | None:
        return next((c for c in self.charities if c.key == key), None)


def load_program(path: str | Path) -> Program:
    """Read and validate a program file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ProgramError(f"{path}: no such program file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProgramError(f"{path}: not valid TOML: {exc}") from exc
    return parse_program(raw, source=str(path))


def parse_program(raw: Mapping[str, Any], source: str = "<program>") -> Program:
    p = _Reader(raw, source)
    currency = p.text("currency")
    if currency not in KNOWN_CURRENCIES:
        p.fail("currency", f"unknown ISO 4217 currency code {currency!r}")
    timezone = p.text("timezone", "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        p.fail("timezone", f"unknown time zone {timezone!r}")
    basis = p.text("tier_basis", "spend_rolling_12m")
    if basis not in TIER_BASES:
        p.fail("tier_basis", f"must be one of {', '.join(TIER_BASES)}, not {basis!r}")
    fx: dict[str, Decimal] = {}
    for code, rate in dict(raw.get("fx", {})).items():
        if code not in KNOWN_CURRENCIES:
            p.fail(f"fx.{code}", "unknown ISO 4217 currency code")
        fx[code] = p.decimal_value(f"fx.{code}", rate, positive=True)
    tiers = _tiers(p, raw.get("tiers"))
    awards = dict(raw.get("associate_awards", {}))
    birthday = dict(raw.get("birthday", {}))
    referral = dict(raw.get("referral", {}))
    return Program(
        key=p.text("key"),
        name=p.text("name"),
        currency=currency,
        points_name=p.text("points_name", "points"),
        points_per_currency_unit=p.decimal("points_per_currency_unit", "1", positive=True),
        redemption_points_per_currency_unit=p.integer("redemption_points_per_currency_unit", 100),
        pending_days=p.integer("pending_days", 0, minimum=0),
        expiry_months=p.integer("expiry_months", 0, minimum=0),
        tier_basis=basis,
        timezone=timezone,
        tiers=tiers,
        fx=fx,
        associate_awards=AssociateAwardLimits(
            max_points_per_award=p.integer_value(
                "associate_awards.max_points_per_award", awards.get("max_points_per_award", 500)
            ),
            max_points_per_day=p.integer_value(
                "associate_awards.max_points_per_day", awards.get("max_points_per_day", 2000)
            ),
        ),
        gifting_max_points_per_day=p.integer_value(
            "gifting.max_points_per_day",
            dict(raw.get("gifting", {})).get("max_points_per_day", 5000),
        ),
        household_max_members=p.integer_value(
            "household.max_members", dict(raw.get("household", {})).get("max_members", 4)
        ),
        charities=tuple(
            Charity(
                key=p.text_value(f"charities[{i}].key", c.get("key")),
                name=p.text_value(f"charities[{i}].name", c.get("name")),
            )
            for i, c in enumerate(raw.get("charities", []))
        ),
        birthday_bonus_points=p.integer_value(
            "birthday.bonus_points", birthday.get("bonus_points", 0), minimum=0
        ),
        birthday_discount_percent=p.decimal_value(
            "birthday.discount_percent", birthday.get("discount_percent", "0")
        ),
        newsletter_discount_percent=p.decimal_value(
            "newsletter.discount_percent",
            dict(raw.get("newsletter", {})).get("discount_percent", "0"),
        ),
        referrer_points=p.integer_value(
            "referral.referrer_points", referral.get("referrer_points", 0), minimum=0
        ),
        referee_points=p.integer_value(
            "referral.referee_points", referral.get("referee_points", 0), minimum=0
        ),
    )


def _tiers(p: _Reader, raw: Any) -> tuple[Tier, ...]:
    if not isinstance(raw, list) or not raw:
        p.fail("tiers", "at least one [[tiers]] table is required")
    tiers: list[Tier] = []
    seen: set[str] = set()
    for i, t in enumerate(raw):
        where = f"tiers[{i}]"
        key = p.text_value(f"{where}.key", t.get("key"))
        if key in seen:
            p.fail(f"{where}.key", f"duplicate tier key {key!r}")
        seen.add(key)
        tiers.append(
            Tier(
                key=key,
                name=p.text_value(f"{where}.name", t.get("name")),
                rank=i,
                min_spend=p.decimal_value(f"{where}.min_spend", t.get("min_spend", "0")),
                earn_multiplier=p.decimal_value(
                    f"{where}.earn_multiplier", t.get("earn_multiplier", "1"), positive=True
                ),
                discount_percent=p.decimal_value(
                    f"{where}.discount_percent", t.get("discount_percent", "0")
                ),
                hidden=bool(t.get("hidden", False)),
                benefits=tuple(str(b) for b in t.get("benefits", [])),
            )
        )
    public = [t for t in tiers if not t.hidden]
    if not public:
        p.fail("tiers", "at least one public (not hidden) tier is required")
    if public[0].min_spend != 0:
        p.fail(f"tiers[{public[0].rank}].min_spend", "the first public tier must start at 0")
    for lower, higher in itertools.pairwise(public):
        if higher.min_spend <= lower.min_spend:
            p.fail(
                f"tiers[{higher.rank}].min_spend",
                f"{higher.key!r} ({higher.min_spend}) must need more spend than "
                f"{lower.key!r} ({lower.min_spend}): list public tiers from lowest to highest",
            )
    return tuple(tiers)


class _Reader:
    """Typed reads of a parsed TOML table that fail with the file and the setting's path."""

    def __init__(self, raw: Mapping[str, Any], source: str) -> None:
        self.raw = raw
        self.source = source

    def fail(self, where: str, why: str) -> Any:
        raise ProgramError(f"{self.source}: {where}: {why}")

    def text(self, name: str, default: str | None = None) -> str:
        return self.text_value(name, self.raw.get(name, default))

    def text_value(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(where, "is required and must be a non-empty string")
        return str(value)

    def integer(self, name: str, default: int, minimum: int = 1) -> int:
        return self.integer_value(name, self.raw.get(name, default), minimum)

    def integer_value(self, where: str, value: Any, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(where, f"must be an integer of at least {minimum}, not {value!r}")
        return int(value)

    def decimal(self, name: str, default: str, positive: bool = False) -> Decimal:
        return self.decimal_value(name, self.raw.get(name, default), positive)

    def decimal_value(self, where: str, value: Any, positive: bool = False) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.fail(where, f'must be a decimal string like "1.5", not {value!r}')
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return self.fail(where, f"not a decimal number: {value!r}")  # type: ignore[no-any-return]
        if not number.is_finite() or number < 0 or (positive and number == 0):
            self.fail(where, f"must be {'positive' if positive else 'zero or more'}: {value!r}")
        return number
