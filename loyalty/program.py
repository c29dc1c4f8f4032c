"""A loyalty program as configuration: the program file (TOML) and its rules.

`load_program(path)` reads and validates a program file. An invalid one raises `ProgramError`
naming the file, the line, the setting and the reason, and the gateway refuses to start:

    programs/x.toml:23: tiers[2].min_spend: 'gold' (5000) must need more spend than
    'silver' (7500): list public tiers from lowest to highest

A TOML syntax error keeps tomllib's line and column (`programs/x.toml:3:10: not valid TOML:
...`). tomllib gives no positions for values, so `_SourceIndex` finds the line of each setting
in the text; a setting that is missing is reported at its table's header, or at line 1.

Validated: unknown settings in every table (with the closest known name as a hint), types,
required texts, keys (lowercase letters, digits and dashes; unique among tiers and among
charities), ISO 4217 codes for `currency` and `[fx]` (no rate for the program currency itself,
rates positive), the time zone, the tier basis, no negative numbers, percentages from 0 to 100,
`pending_days` at most 365, `[household] invitation_days` from 1 to 30, an associate's
per-award limit within its daily limit, and tiers: at least one public tier, the first public
tier from 0, public tiers in strictly increasing `min_spend`. A hidden tier is assigned by
staff and never reached by spend, so a hidden tier with `min_spend` above 0 is an error rather
than a silently ignored setting.

`dump_program(program)` writes a program back as a program file that loads to an equal program.
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
import tomllib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from loyalty.money import KNOWN_CURRENCIES

TIER_BASES = ("spend_rolling_12m", "spend_calendar_year")
MAX_PENDING_DAYS = 365
# How long a member has to accept an owner's invitation to its household: a week covers a
# member who opens the app weekly; longer keeps a slot of `max_members` taken by someone
# who may never answer (pending invitations count towards it).
DEFAULT_INVITATION_DAYS = 7
MAX_INVITATION_DAYS = 30

# The settings each table of a program file may hold ([fx] holds currency codes instead).
_TOP_LEVEL = frozenset(
    {
        "key", "name", "currency", "points_name", "points_per_currency_unit",
        "redemption_points_per_currency_unit", "pending_days", "expiry_months", "tier_basis",
        "timezone", "fx", "tiers", "associate_awards", "gifting", "household", "charities",
        "birthday", "newsletter", "referral",
    }
)  # fmt: skip
_TABLES: dict[str, frozenset[str]] = {
    "associate_awards": frozenset({"max_points_per_award", "max_points_per_day"}),
    "gifting": frozenset({"max_points_per_day"}),
    "household": frozenset({"max_members", "invitation_days"}),
    "birthday": frozenset({"bonus_points", "discount_percent"}),
    "newsletter": frozenset({"discount_percent"}),
    "referral": frozenset({"referrer_points", "referee_points"}),
}
_ARRAYS: dict[str, frozenset[str]] = {
    "tiers": frozenset(
        {"key", "name", "min_spend", "earn_multiplier", "discount_percent", "hidden", "benefits"}
    ),
    "charities": frozenset({"key", "name"}),
}
_KEY = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


class ProgramError(ValueError):
    """A program file that cannot run: says which file, which line, which setting and why."""


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
    household_invitation_days: int = DEFAULT_INVITATION_DAYS
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


# --- reading ---------------------------------------------------------------------------------


def load_program(path: str | Path) -> Program:
    """Read and validate a program file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ProgramError(f"{path}: no such program file") from exc
    except UnicodeDecodeError as exc:
        raise ProgramError(f"{path}: not UTF-8 text: {exc.reason}") from exc
    except OSError as exc:
        raise ProgramError(f"{path}: cannot read the program file: {exc.strerror}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(path, text, exc) from exc
    return parse_program(raw, source=str(path), text=text)


def _syntax_error(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> ProgramError:
    message = str(exc)
    at = re.search(r" \(at line (\d+), column (\d+)\)$", message)
    if at:
        return ProgramError(f"{path}:{at[1]}:{at[2]}: not valid TOML: {message[: at.start()]}")
    last_line = max(len(text.splitlines()), 1)
    return ProgramError(f"{path}:{last_line}: not valid TOML: {message}")


def parse_program(
    raw: Mapping[str, Any], source: str = "<program>", text: str | None = None
) -> Program:
    """Validate a parsed program file; `text`, its source, lets errors name the line."""
    p = _Reader(raw, "", source, _SourceIndex(text) if text is not None else None)
    _check_settings(p)
    currency = _currency(p, "currency")
    return Program(
        key=p.key("key"),
        name=p.text("name"),
        currency=currency,
        points_name=p.text("points_name", "points"),
        points_per_currency_unit=p.decimal("points_per_currency_unit", "1", positive=True),
        redemption_points_per_currency_unit=p.integer("redemption_points_per_currency_unit", 100),
        pending_days=p.integer("pending_days", 0, minimum=0, maximum=MAX_PENDING_DAYS),
        expiry_months=p.integer("expiry_months", 0, minimum=0),
        tier_basis=p.choice("tier_basis", TIER_BASES),
        timezone=_timezone(p, "timezone"),
        tiers=_tiers(p),
        fx=_fx(p.table("fx"), currency),
        associate_awards=_associate_awards(p.table("associate_awards")),
        gifting_max_points_per_day=p.table("gifting").integer("max_points_per_day", 5000),
        household_max_members=p.table("household").integer("max_members", 4),
        household_invitation_days=p.table("household").integer(
            "invitation_days", DEFAULT_INVITATION_DAYS, maximum=MAX_INVITATION_DAYS
        ),
        charities=_charities(p),
        birthday_bonus_points=p.table("birthday").integer("bonus_points", 0, minimum=0),
        birthday_discount_percent=p.table("birthday").percent("discount_percent"),
        newsletter_discount_percent=p.table("newsletter").percent("discount_percent"),
        referrer_points=p.table("referral").integer("referrer_points", 0, minimum=0),
        referee_points=p.table("referral").integer("referee_points", 0, minimum=0),
    )


def _check_settings(p: _Reader) -> None:
    """Every table is a table, every list of tables a list, and no setting is unknown."""
    p.known(_TOP_LEVEL)
    for name, known in _TABLES.items():
        p.table(name).known(known)
    for name, known in _ARRAYS.items():
        for item in p.array(name):
            item.known(known)
    p.table("fx")


def _currency(p: _Reader, name: str) -> str:
    code = p.text(name)
    if code not in KNOWN_CURRENCIES:
        p.fail(name, _unknown_currency(code))
    return code


def _unknown_currency(code: str) -> str:
    hint = _did_you_mean(code.upper(), KNOWN_CURRENCIES)
    return f"unknown ISO 4217 currency code {code!r}{hint}"


def _timezone(p: _Reader, name: str) -> str:
    zone = p.text(name, "UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        p.fail(name, f"unknown time zone {zone!r}{_did_you_mean(zone, available_timezones())}")
    return zone


def _fx(fx: _Reader, currency: str) -> dict[str, Decimal]:
    rates: dict[str, Decimal] = {}
    for code in fx.raw:
        if code not in KNOWN_CURRENCIES:
            fx.fail(code, _unknown_currency(code))
        if code == currency:
            fx.fail(code, f"{code} is the program currency and needs no rate: remove it")
        rates[code] = fx.decimal(code, positive=True)
    return rates


def _associate_awards(awards: _Reader) -> AssociateAwardLimits:
    per_award = awards.integer("max_points_per_award", 500)
    per_day = awards.integer("max_points_per_day", 2000)
    if per_award > per_day:
        awards.fail(
            "max_points_per_award",
            f"{per_award} is more than max_points_per_day ({per_day}): no such award could be "
            "given",
        )
    return AssociateAwardLimits(max_points_per_award=per_award, max_points_per_day=per_day)


def _charities(p: _Reader) -> tuple[Charity, ...]:
    items = p.array("charities")
    charities = tuple(Charity(key=c.key("key"), name=c.text("name")) for c in items)
    _check_unique(items, [c.key for c in charities], "charity key")
    return charities


def _tiers(p: _Reader) -> tuple[Tier, ...]:
    items = p.array("tiers")
    if not items:
        p.fail("tiers", "at least one [[tiers]] table is required")
    tiers = tuple(_tier(item, rank) for rank, item in enumerate(items))
    _check_unique(items, [t.key for t in tiers], "tier key")
    _check_thresholds(p, items, tiers)
    return tiers


def _tier(t: _Reader, rank: int) -> Tier:
    key = t.key("key")
    tier = Tier(
        key=key,
        name=t.text("name"),
        rank=rank,
        min_spend=t.decimal("min_spend", "0"),
        earn_multiplier=t.decimal("earn_multiplier", "1", positive=True),
        discount_percent=t.percent("discount_percent"),
        hidden=t.boolean("hidden", False),
        benefits=t.texts("benefits"),
    )
    if tier.hidden and tier.min_spend > 0:
        t.fail(
            "min_spend",
            f"hidden tier {key!r} is assigned by staff, never reached by spend: "
            'remove min_spend or set it to "0"',
        )
    return tier


def _check_unique(items: Sequence[_Reader], keys: Sequence[str], what: str) -> None:
    first: dict[str, str] = {}
    for item, key in zip(items, keys, strict=True):
        if key in first:
            item.fail("key", f"duplicate {what} {key!r}, already used by {first[key]}")
        first[key] = item.path


def _check_thresholds(p: _Reader, items: Sequence[_Reader], tiers: Sequence[Tier]) -> None:
    public = [t for t in tiers if not t.hidden]
    if not public:
        p.fail("tiers", "at least one public (not hidden) tier is required: members start in it")
    entry = public[0]
    if entry.min_spend != 0:
        items[entry.rank].fail(
            "min_spend",
            f"the first public tier {entry.key!r} must start at 0, not {entry.min_spend}: "
            "every member starts in it",
        )
    for lower, higher in itertools.pairwise(public):
        if higher.min_spend <= lower.min_spend:
            items[higher.rank].fail(
                "min_spend",
                f"{higher.key!r} ({higher.min_spend}) must need more spend than "
                f"{lower.key!r} ({lower.min_spend}): list public tiers from lowest to highest",
            )


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class _Reader:
    """Typed reads of one table of a program file; failures name the file, line and setting."""

    def __init__(
        self, raw: Mapping[str, Any], path: str, source: str, index: _SourceIndex | None
    ) -> None:
        self.raw = raw
        self.path = path  # of this table: "" (top level), "birthday", "tiers[2]"
        self.source = source
        self.index = index

    def where(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, why: str) -> NoReturn:
        where = self.where(name)
        line = f":{self.index.line_of(where)}" if self.index is not None else ""
        raise ProgramError(f"{self.source}{line}: {where}: {why}")

    def known(self, settings: Collection[str]) -> None:
        for name in self.raw:
            if name not in settings:
                hint = (
                    _did_you_mean(name, settings) or f"; known here: {', '.join(sorted(settings))}"
                )
                self.fail(name, f"unknown setting{hint}")

    def table(self, name: str) -> _Reader:
        value = self.raw.get(name, {})
        if not isinstance(value, dict):
            self.fail(name, f"must be a table ([{self.where(name)}]), not {value!r}")
        return _Reader(value, self.where(name), self.source, self.index)

    def array(self, name: str) -> list[_Reader]:
        value = self.raw.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(name, f"must be a list of [[{self.where(name)}]] tables, not {value!r}")
        where = self.where(name)
        return [
            _Reader(item, f"{where}[{i}]", self.source, self.index) for i, item in enumerate(value)
        ]

    def text(self, name: str, default: str | None = None) -> str:
        value = self.raw.get(name, default)
        if value is None:
            self.fail(name, "is required")
        if not isinstance(value, str) or not value.strip():
            self.fail(name, f"must be a non-empty string, not {value!r}")
        return value

    def key(self, name: str) -> str:
        value = self.text(name)
        if not _KEY.fullmatch(value):
            self.fail(
                name, f"{value!r} must be lowercase letters, digits and dashes, like 'green-2'"
            )
        return value

    def choice(self, name: str, options: Sequence[str]) -> str:
        value = self.text(name, options[0])
        if value not in options:
            self.fail(name, f"must be one of {', '.join(options)}, not {value!r}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw.get(name, default)
        if not isinstance(value, bool):
            self.fail(name, f"must be true or false, not {value!r}")
        return value

    def texts(self, name: str) -> tuple[str, ...]:
        value = self.raw.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            example = '["Free delivery"]'
            self.fail(name, f"must be a list of non-empty strings like {example}, not {value!r}")
        return tuple(value)

    def integer(self, name: str, default: int, minimum: int = 1, maximum: int | None = None) -> int:
        value = self.raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, f"must be a whole number, not {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            self.fail(name, f"must be {bounds}, not {value}")
        return value

    def decimal(self, name: str, default: str = "0", positive: bool = False) -> Decimal:
        value = self.raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.fail(name, f'must be a decimal string like "1.5", not {value!r}')
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            self.fail(name, f"not a decimal number: {value!r}")
        if not number.is_finite() or number < 0 or (positive and number == 0):
            self.fail(name, f"must be {'positive' if positive else 'zero or more'}: {value!r}")
        return number

    def percent(self, name: str) -> Decimal:
        number = self.decimal(name)
        if number > 100:
            self.fail(name, f"must be a percentage from 0 to 100, not {number}")
        return number


# --- where each setting is written -----------------------------------------------------------

_SEGMENT = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_SEGMENT}(?:\s*\.\s*{_SEGMENT})*"
_ARRAY_HEADER = re.compile(rf"\[\[\s*({_DOTTED})\s*\]\]")
_TABLE_HEADER = re.compile(rf"\[\s*({_DOTTED})\s*\]")
_ASSIGNMENT = re.compile(rf"({_DOTTED})\s*=")
_LAST_PART = re.compile(r"(?:\.[^.\[\]]*|\[\d+\])$")


class _SourceIndex:
    """The line where each setting of a (valid) TOML text is written.

    Paths look like the ones errors name: `currency`, `fx.USD`, `tiers`, `tiers[2]`,
    `tiers[2].min_spend`. Lines inside multi-line arrays and strings are skipped.
    """

    def __init__(self, text: str) -> None:
        self.lines: dict[str, int] = {}
        self._arrays: dict[str, int] = {}  # an array of tables -> index of its last table
        self._table = ""
        self._value = _ValueScanner()
        for number, line in enumerate(text.splitlines(), start=1):
            self._read(number, line)

    def line_of(self, path: str) -> int:
        """The setting's line, else its table's (a missing setting), else 1."""
        while path not in self.lines:
            shorter = _LAST_PART.sub("", path)
            if shorter == path:
                return 1
            path = shorter
        return self.lines[path]

    def _read(self, number: int, line: str) -> None:
        if self._value.open:
            self._value.scan(line)
            return
        text = line.lstrip()
        if header := _ARRAY_HEADER.match(text):
            *parents, name = _keys(header[1])
            path = _join(self._resolve(parents), name)
            self._arrays[path] = self._arrays.get(path, -1) + 1
            self._table = f"{path}[{self._arrays[path]}]"
            self._note(path, number)
        elif header := _TABLE_HEADER.match(text):
            self._table = self._resolve(_keys(header[1]))
        elif assignment := _ASSIGNMENT.match(text):
            path = self._table
            for key in _keys(assignment[1]):
                path = _join(path, key)
                self._note(path, number)
            self._value.scan(text[assignment.end() :])
            return
        else:
            return
        self._note(self._table, number)

    def _resolve(self, keys: Sequence[str]) -> str:
        """A table's path, where an array of tables means its last table so far."""
        path = ""
        for key in keys:
            path = _join(path, key)
            if path in self._arrays:
                path = f"{path}[{self._arrays[path]}]"
        return path

    def _note(self, path: str, number: int) -> None:
        self.lines.setdefault(path, number)


class _ValueScanner:
    """Follows a value across lines: open brackets and multi-line strings."""

    def __init__(self) -> None:
        self.depth = 0
        self.quote: str | None = None  # the delimiter of an open multi-line string

    @property
    def open(self) -> bool:
        return self.depth > 0 or self.quote is not None

    def scan(self, text: str) -> None:
        i = 0
        while i < len(text):
            if self.quote is not None:
                i = self._in_multiline(text, i)
            elif text[i] == "#":
                return
            elif text.startswith(('"""', "'''"), i):
                self.quote = text[i : i + 3]
                i += 3
            elif text[i] in "\"'":
                i = _string_end(text, i)
            else:
                if text[i] in "[{":
                    self.depth += 1
                elif text[i] in "]}":
                    self.depth -= 1
                i += 1

    def _in_multiline(self, text: str, i: int) -> int:
        if self.quote == '"""' and text[i] == "\\":
            return i + 2
        if self.quote is not None and text.startswith(self.quote, i):
            self.quote = None
            return i + 3
        return i + 1


def _string_end(text: str, start: int) -> int:
    """Just past the one-line string opening at `start`."""
    quote = text[start]
    i = start + 1
    while i < len(text) and text[i] != quote:
        i += 2 if quote == '"' and text[i] == "\\" else 1
    return i + 1


def _keys(dotted: str) -> list[str]:
    return [_unquote(key) for key in re.findall(_SEGMENT, dotted)]


def _unquote(key: str) -> str:
    if key[0] in "\"'":
        value = tomllib.loads(f"k = {key}")["k"]
        assert isinstance(value, str)
        return value
    return key


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- writing ---------------------------------------------------------------------------------


def dump_program(program: Program) -> str:
    """The program as a program file; `load_program` of it gives an equal program."""
    p = program
    lines = [
        *_assignments(
            key=p.key,
            name=p.name,
            currency=p.currency,
            points_name=p.points_name,
            points_per_currency_unit=p.points_per_currency_unit,
            redemption_points_per_currency_unit=p.redemption_points_per_currency_unit,
            pending_days=p.pending_days,
            expiry_months=p.expiry_months,
            tier_basis=p.tier_basis,
            timezone=p.timezone,
        ),
        "",
        "[fx]",
        *_assignments(**p.fx),
    ]
    for t in p.tiers:
        lines += ["", "[[tiers]]"]
        lines += _assignments(
            key=t.key,
            name=t.name,
            min_spend=t.min_spend,
            earn_multiplier=t.earn_multiplier,
            discount_percent=t.discount_percent,
            hidden=t.hidden,
            benefits=t.benefits,
        )
    lines += ["", "[associate_awards]"]
    lines += _assignments(
        max_points_per_award=p.associate_awards.max_points_per_award,
        max_points_per_day=p.associate_awards.max_points_per_day,
    )
    lines += ["", "[gifting]", *_assignments(max_points_per_day=p.gifting_max_points_per_day)]
    lines += ["", "[household]"]
    lines += _assignments(
        max_members=p.household_max_members, invitation_days=p.household_invitation_days
    )
    for c in p.charities:
        lines += ["", "[[charities]]", *_assignments(key=c.key, name=c.name)]
    lines += ["", "[birthday]"]
    lines += _assignments(
        bonus_points=p.birthday_bonus_points, discount_percent=p.birthday_discount_percent
    )
    lines += ["", "[newsletter]", *_assignments(discount_percent=p.newsletter_discount_percent)]
    lines += ["", "[referral]"]
    lines += _assignments(referrer_points=p.referrer_points, referee_points=p.referee_points)
    return "\n".join(lines) + "\n"


def _assignments(**settings: object) -> list[str]:
    return [f"{name} = {_toml_value(value)}" for name, value in settings.items()]


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return json.dumps(str(value))
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)
