"""The program file: the shipped programs, validation errors with their lines, round trips."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from loyalty.program import (
    AssociateAwardLimits,
    Charity,
    Program,
    ProgramError,
    dump_program,
    load_program,
    parse_program,
)

PROGRAMS = Path(__file__).resolve().parents[2] / "programs"

# A valid program; the tests below break it one setting at a time. Its line numbers matter:
# line 19 is silver's min_spend, line 25 gold's.
VALID = """\
key = "test"
name = "Test"
currency = "CAD"
points_per_currency_unit = "1"
pending_days = 30
timezone = "America/Toronto"

[fx]
USD = "1.37"

[[tiers]]
key = "member"
name = "Member"
min_spend = "0"

[[tiers]]
key = "silver"
name = "Silver"
min_spend = "2500"
earn_multiplier = "1.25"

[[tiers]]
key = "gold"
name = "Gold"
min_spend = "7500"
discount_percent = "5"
benefits = [
  "Private styling",
  "Early access",
]

[[tiers]]
key = "vip"
name = "VIP"
hidden = true

[associate_awards]
max_points_per_award = 500
max_points_per_day = 2000

[gifting]
max_points_per_day = 5000

[[charities]]
key = "sickkids"
name = "SickKids Foundation"

[birthday]
bonus_points = 500
discount_percent = "15"

[newsletter]
discount_percent = "10"

[referral]
referrer_points = 1000
referee_points = 500
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "x.toml"
    path.write_text(text, encoding="utf-8")
    return path


def edited(*changes: tuple[str, str]) -> str:
    text = VALID
    for old, new in changes:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def problem(tmp_path: Path, text: str) -> str:
    """The error of loading `text`, with the file named `x.toml`."""
    with pytest.raises(ProgramError) as caught:
        load_program(write(tmp_path, text))
    return str(caught.value).replace(f"{tmp_path}/", "")


# --- the shipped programs --------------------------------------------------------------------


def test_club_harry() -> None:
    program = load_program(PROGRAMS / "club-harry.toml")
    assert (program.key, program.name, program.currency) == ("club-harry", "Club Harry", "CAD")
    assert [t.key for t in program.tiers] == ["member", "silver", "gold", "black"]
    assert [t.min_spend for t in program.tiers] == [0, 2500, 7500, 20000]
    assert [t.earn_multiplier for t in program.tiers] == [1, Decimal("1.25"), Decimal("1.5"), 2]
    assert not any(t.hidden for t in program.tiers)
    assert program.fx == {"USD": Decimal("1.37"), "EUR": Decimal("1.49"), "GBP": Decimal("1.74")}
    assert program.tier_basis == "spend_rolling_12m"
    assert program.timezone == "America/Toronto"
    assert program.pending_days == 30
    assert program.household_max_members == 4
    assert program.household_invitation_days == 7
    assert [c.key for c in program.charities] == ["sickkids", "movember"]
    assert (program.referrer_points, program.referee_points) == (1000, 500)
    assert program.newsletter_discount_percent == 10


def test_harrods_rewards() -> None:
    program = load_program(PROGRAMS / "harrods-rewards.toml")
    assert (program.key, program.name) == ("harrods-rewards", "Harrods Rewards")
    assert program.currency == "GBP"
    assert program.points_name == "points"
    assert program.tier_basis == "spend_calendar_year"
    assert program.timezone == "Europe/London"
    assert [t.key for t in program.tiers] == ["green-1", "green-2", "gold", "black"]
    assert [t.name for t in program.tiers] == ["Green 1", "Green 2", "Gold", "Black"]
    assert [t.min_spend for t in program.tiers] == [0, 1000, 10000, 25000]
    assert [t.earn_multiplier for t in program.tiers] == [1, Decimal("1.5"), 2, 3]
    assert not any(t.hidden for t in program.tiers)
    assert program.points_per_currency_unit == 1
    assert program.redemption_points_per_currency_unit == 100
    assert program.fx == {"EUR": Decimal("0.85"), "USD": Decimal("0.79")}
    assert [c.key for c in program.charities] == ["gosh", "kings-trust"]


def test_diamond_club() -> None:
    program = load_program(PROGRAMS / "diamond-club.toml")
    assert (program.key, program.name) == ("diamond-club", "The Diamond Club")
    assert program.currency == "EUR"
    assert program.points_name == "carats"
    assert program.points_per_currency_unit == 1
    assert program.timezone == "Europe/Paris"
    assert program.fx == {
        "USD": Decimal("0.92"),
        "GBP": Decimal("1.18"),
        "CHF": Decimal("1.06"),
        "JPY": Decimal("0.0061"),
    }
    assert [t.key for t in program.tiers] == ["radiant", "marquise", "emerald", "ambassador"]
    assert [t.hidden for t in program.tiers] == [False, False, False, True]
    assert [t.min_spend for t in program.tiers] == [0, 5000, 15000, 0]
    assert [t.discount_percent for t in program.tiers] == [0, 5, 10, 15]
    assert [t.earn_multiplier for t in program.tiers] == [1, Decimal("1.25"), Decimal("1.5"), 2]
    assert program.tiers[-1].rank == max(t.rank for t in program.tiers)
    assert program.birthday_bonus_points == 250
    assert program.birthday_discount_percent == 10


@pytest.mark.parametrize("name", ["club-harry", "harrods-rewards", "diamond-club"])
def test_shipped_programs_round_trip(tmp_path: Path, name: str) -> None:
    program = load_program(PROGRAMS / f"{name}.toml")
    assert load_program(write(tmp_path, dump_program(program))) == program


# --- a valid file ----------------------------------------------------------------------------


def test_valid_file_loads_with_defaults(tmp_path: Path) -> None:
    program = load_program(write(tmp_path, VALID))
    assert program.points_name == "points"
    assert program.tier_basis == "spend_rolling_12m"
    assert program.redemption_points_per_currency_unit == 100
    assert program.expiry_months == 0
    assert program.household_max_members == 4
    assert program.household_invitation_days == 7
    assert program.associate_awards == AssociateAwardLimits(500, 2000)
    gold = program.tiers[2]
    assert gold.rank == 2
    assert (gold.earn_multiplier, gold.discount_percent) == (Decimal(1), Decimal(5))
    assert gold.benefits == ("Private styling", "Early access")


def test_household_invitations_last_as_the_program_says(tmp_path: Path) -> None:
    text = edited(("[gifting]\n", "[household]\ninvitation_days = 14\n\n[gifting]\n"))
    program = load_program(write(tmp_path, text))
    assert (program.household_max_members, program.household_invitation_days) == (4, 14)
    assert load_program(write(tmp_path, dump_program(program))) == program


def test_valid_file_round_trips(tmp_path: Path) -> None:
    program = load_program(write(tmp_path, VALID))
    text = dump_program(program)
    assert load_program(write(tmp_path, text)) == program
    assert dump_program(parse_program(tomllib.loads(text))) == text


def test_public_tiers_entry_tier_and_lookups(tmp_path: Path) -> None:
    program = load_program(write(tmp_path, VALID))
    assert [t.key for t in program.public_tiers] == ["member", "silver", "gold"]
    assert program.entry_tier.key == "member"
    vip = program.tier("vip")
    assert vip is not None and vip.hidden and vip.rank == 3
    assert program.tier("platinum") is None
    assert program.charity("sickkids") == Charity("sickkids", "SickKids Foundation")
    assert program.charity("unicef") is None


def test_entry_tier_skips_a_hidden_first_tier(tmp_path: Path) -> None:
    staff = '[[tiers]]\nkey = "staff"\nname = "Staff"\nhidden = true\n\n'
    text = edited(('[[tiers]]\nkey = "member"', f'{staff}[[tiers]]\nkey = "member"'))
    program = load_program(write(tmp_path, text))
    assert [t.key for t in program.tiers][:2] == ["staff", "member"]
    assert program.entry_tier.key == "member"
    assert program.zone.key == "America/Toronto"


# --- invalid files: file, line, setting and reason -------------------------------------------

SICKKIDS_AGAIN = '[[charities]]\nkey = "sickkids"\nname = "Other"\n'
BIRTHDAY = '[birthday]\nbonus_points = 500\ndiscount_percent = "15"\n'
TIMEZONE = 'timezone = "America/Toronto"\n'
INVALID: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {
    "non-increasing thresholds": (
        (
            ('min_spend = "2500"', 'min_spend = "7500"'),
            ('min_spend = "7500"\ndisc', 'min_spend = "5000"\ndisc'),
        ),
        "x.toml:25: tiers[2].min_spend: 'gold' (5000) must need more spend than 'silver' (7500)"
        ": list public tiers from lowest to highest",
    ),
    "equal thresholds": (
        (('min_spend = "7500"', 'min_spend = "2500"'),),
        "x.toml:25: tiers[2].min_spend: 'gold' (2500) must need more spend than 'silver' (2500)"
        ": list public tiers from lowest to highest",
    ),
    "first public tier above 0": (
        (('min_spend = "0"', 'min_spend = "100"'),),
        "x.toml:14: tiers[0].min_spend: the first public tier 'member' must start at 0, "
        "not 100: every member starts in it",
    ),
    "hidden tier with a threshold": (
        (("hidden = true", 'hidden = true\nmin_spend = "50000"'),),
        "x.toml:36: tiers[3].min_spend: hidden tier 'vip' is assigned by staff, never reached "
        'by spend: remove min_spend or set it to "0"',
    ),
    "no public tier": (
        (
            ('name = "Member"\n', 'name = "Member"\nhidden = true\n'),
            ('name = "Silver"\n', 'name = "Silver"\nhidden = true\n'),
            ('name = "Gold"\n', 'name = "Gold"\nhidden = true\n'),
            ('min_spend = "2500"', 'min_spend = "0"'),
            ('min_spend = "7500"', 'min_spend = "0"'),
        ),
        "x.toml:11: tiers: at least one public (not hidden) tier is required: members start in it",
    ),
    "duplicate tier key": (
        (('key = "gold"', 'key = "silver"'),),
        "x.toml:23: tiers[2].key: duplicate tier key 'silver', already used by tiers[1]",
    ),
    "tier key format": (
        (('key = "gold"', 'key = "Gold Tier"'),),
        "x.toml:23: tiers[2].key: 'Gold Tier' must be lowercase letters, digits and dashes, "
        "like 'green-2'",
    ),
    "tier without a name": (
        (('name = "Silver"\n', ""),),
        "x.toml:16: tiers[1].name: is required",
    ),
    "typo in a tier setting": (
        (('min_spend = "2500"', 'min_spent = "2500"'),),
        "x.toml:19: tiers[1].min_spent: unknown setting; did you mean 'min_spend'?",
    ),
    "another typo in a tier setting": (
        (('earn_multiplier = "1.25"', 'earn_multipler = "1.25"'),),
        "x.toml:20: tiers[1].earn_multipler: unknown setting; did you mean 'earn_multiplier'?",
    ),
    "typo at the top level": (
        (('currency = "CAD"', 'curency = "CAD"'),),
        "x.toml:3: curency: unknown setting; did you mean 'currency'?",
    ),
    "typo in a table name": (
        (("[gifting]", "[gifts]"),),
        "x.toml:41: gifts: unknown setting; did you mean 'gifting'?",
    ),
    "unknown setting without a close one": (
        (("max_points_per_day = 5000", 'colour = "green"'),),
        "x.toml:42: gifting.colour: unknown setting; known here: max_points_per_day",
    ),
    "typo in a charity": (
        (('name = "SickKids Foundation"', 'nmae = "SickKids Foundation"'),),
        "x.toml:46: charities[0].nmae: unknown setting; did you mean 'name'?",
    ),
    "negative tier multiplier": (
        (('earn_multiplier = "1.25"', 'earn_multiplier = "-1.25"'),),
        "x.toml:20: tiers[1].earn_multiplier: must be positive: '-1.25'",
    ),
    "tier discount above 100": (
        (('discount_percent = "5"', 'discount_percent = "120"'),),
        "x.toml:26: tiers[2].discount_percent: must be a percentage from 0 to 100, not 120",
    ),
    "negative public threshold": (
        (('min_spend = "2500"', 'min_spend = "-10"'),),
        "x.toml:19: tiers[1].min_spend: must be zero or more: '-10'",
    ),
    "hidden not a boolean": (
        (("hidden = true", 'hidden = "yes"'),),
        "x.toml:35: tiers[3].hidden: must be true or false, not 'yes'",
    ),
    "benefits not strings": (
        (('"Early access",', "42,"),),
        "x.toml:27: tiers[2].benefits: must be a list of non-empty strings like "
        "[\"Free delivery\"], not ['Private styling', 42]",
    ),
    "unknown currency": (
        (('currency = "CAD"', 'currency = "EURO"'),),
        "x.toml:3: currency: unknown ISO 4217 currency code 'EURO'; did you mean 'EUR'?",
    ),
    "lowercase currency": (
        (('currency = "CAD"', 'currency = "cad"'),),
        "x.toml:3: currency: unknown ISO 4217 currency code 'cad'; did you mean 'CAD'?",
    ),
    "unknown fx currency": (
        (('USD = "1.37"', 'XYZ = "1.37"'),),
        "x.toml:9: fx.XYZ: unknown ISO 4217 currency code 'XYZ'",
    ),
    "fx of the program currency": (
        (('USD = "1.37"', 'USD = "1.37"\nCAD = "1"'),),
        "x.toml:10: fx.CAD: CAD is the program currency and needs no rate: remove it",
    ),
    "zero fx rate": (
        (('USD = "1.37"', 'USD = "0"'),),
        "x.toml:9: fx.USD: must be positive: '0'",
    ),
    "negative fx rate": (
        (('USD = "1.37"', 'USD = "-1.37"'),),
        "x.toml:9: fx.USD: must be positive: '-1.37'",
    ),
    "fx rate as a float": (
        (('USD = "1.37"', "USD = 1.37"),),
        'x.toml:9: fx.USD: must be a decimal string like "1.5", not 1.37',
    ),
    "fx rate not a number": (
        (('USD = "1.37"', 'USD = "one"'),),
        "x.toml:9: fx.USD: not a decimal number: 'one'",
    ),
    "unknown time zone": (
        (('timezone = "America/Toronto"', 'timezone = "America/Toronot"'),),
        "x.toml:6: timezone: unknown time zone 'America/Toronot'; did you mean 'America/Toronto'?",
    ),
    "unknown tier basis": (
        (("pending_days = 30", 'pending_days = 30\ntier_basis = "lifetime"'),),
        "x.toml:6: tier_basis: must be one of spend_rolling_12m, spend_calendar_year, "
        "not 'lifetime'",
    ),
    "negative pending days": (
        (("pending_days = 30", "pending_days = -1"),),
        "x.toml:5: pending_days: must be from 0 to 365, not -1",
    ),
    "pending days above a year": (
        (("pending_days = 30", "pending_days = 400"),),
        "x.toml:5: pending_days: must be from 0 to 365, not 400",
    ),
    "pending days as text": (
        (("pending_days = 30", 'pending_days = "30"'),),
        "x.toml:5: pending_days: must be a whole number, not '30'",
    ),
    "empty points name": (
        (("pending_days = 30", 'pending_days = 30\npoints_name = " "'),),
        "x.toml:6: points_name: must be a non-empty string, not ' '",
    ),
    "zero earn rate": (
        (('points_per_currency_unit = "1"', 'points_per_currency_unit = "0"'),),
        "x.toml:4: points_per_currency_unit: must be positive: '0'",
    ),
    "missing currency": (
        (('currency = "CAD"\n', ""),),
        "x.toml:1: currency: is required",
    ),
    "negative birthday bonus": (
        (("bonus_points = 500", "bonus_points = -500"),),
        "x.toml:49: birthday.bonus_points: must be at least 0, not -500",
    ),
    "birthday discount above 100": (
        (('discount_percent = "15"', 'discount_percent = "101"'),),
        "x.toml:50: birthday.discount_percent: must be a percentage from 0 to 100, not 101",
    ),
    "negative newsletter discount": (
        (('discount_percent = "10"', 'discount_percent = "-5"'),),
        "x.toml:53: newsletter.discount_percent: must be zero or more: '-5'",
    ),
    "negative referral points": (
        (("referee_points = 500", "referee_points = -1"),),
        "x.toml:57: referral.referee_points: must be at least 0, not -1",
    ),
    "duplicate charity key": (
        (('name = "SickKids Foundation"\n', f'name = "SickKids Foundation"\n\n{SICKKIDS_AGAIN}'),),
        "x.toml:49: charities[1].key: duplicate charity key 'sickkids', already used by "
        "charities[0]",
    ),
    "award above the daily limit": (
        (("max_points_per_award = 500", "max_points_per_award = 5000"),),
        "x.toml:38: associate_awards.max_points_per_award: 5000 is more than "
        "max_points_per_day (2000): no such award could be given",
    ),
    "table that is not a table": (
        ((BIRTHDAY, ""), (TIMEZONE, f"{TIMEZONE}birthday = 5\n")),
        "x.toml:7: birthday: must be a table ([birthday]), not 5",
    ),
    "inline table": (
        ((BIRTHDAY, ""), (TIMEZONE, f"{TIMEZONE}birthday = {{ bonus_points = -1 }}\n")),
        "x.toml:7: birthday.bonus_points: must be at least 0, not -1",
    ),
    "dotted key": (
        ((BIRTHDAY, ""), (TIMEZONE, f"{TIMEZONE}birthday.bonus_points = -2\n")),
        "x.toml:7: birthday.bonus_points: must be at least 0, not -2",
    ),
    "quoted key": (
        (("max_points_per_day = 5000", '"max_points_per_day" = -3'),),
        "x.toml:42: gifting.max_points_per_day: must be at least 1, not -3",
    ),
    "invitations that never lapse": (
        (
            (
                "max_points_per_day = 5000\n",
                "max_points_per_day = 5000\n\n[household]\ninvitation_days = 0\n",
            ),
        ),
        "x.toml:45: household.invitation_days: must be from 1 to 30, not 0",
    ),
    "invitations kept over a month": (
        (
            (
                "max_points_per_day = 5000\n",
                "max_points_per_day = 5000\n\n[household]\ninvitation_days = 31\n",
            ),
        ),
        "x.toml:45: household.invitation_days: must be from 1 to 30, not 31",
    ),
    "subtable of an array of tables": (
        (("hidden = true\n", "hidden = true\n\n[tiers.perks]\nlounge = true\n"),),
        "x.toml:37: tiers[3].perks: unknown setting; known here: benefits, discount_percent, "
        "earn_multiplier, hidden, key, min_spend, name",
    ),
}


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_invalid_program(tmp_path: Path, case: str) -> None:
    changes, message = INVALID[case]
    assert problem(tmp_path, edited(*changes)) == message


def test_no_tiers(tmp_path: Path) -> None:
    text = 'key = "x"\nname = "X"\ncurrency = "EUR"\n'
    assert problem(tmp_path, text) == "x.toml:1: tiers: at least one [[tiers]] table is required"


def test_toml_syntax_error_keeps_line_and_column(tmp_path: Path) -> None:
    text = edited(("pending_days = 30", "pending_days = 30 days"))
    assert problem(tmp_path, text) == (
        "x.toml:5:19: not valid TOML: Expected newline or end of document after a statement"
    )


def test_toml_syntax_error_at_the_end(tmp_path: Path) -> None:
    assert problem(tmp_path, VALID + 'note = """never closed\n') == (
        "x.toml:58: not valid TOML: Unterminated string (at end of document)"
    )


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProgramError, match=r"x\.toml: no such program file$"):
        load_program(tmp_path / "x.toml")


def test_lines_inside_multiline_values_are_not_settings(tmp_path: Path) -> None:
    text = edited(
        ('name = "Gold"', 'name = """Gold\nmin_spend = "1"\n"""'),
        ('  "Early access",\n', '  "min_spend = 2",\n  """\n[[tiers]]\n""",\n'),
        ('min_spend = "7500"', 'min_spend = "100"'),
    )
    # Gold's real min_spend is on line 27, not the look-alikes on lines 25, 31 and 33.
    assert problem(tmp_path, text) == (
        "x.toml:27: tiers[2].min_spend: 'gold' (100) must need more spend than 'silver' (2500)"
        ": list public tiers from lowest to highest"
    )


def test_parse_program_without_text_names_no_line() -> None:
    raw = tomllib.loads(edited(('currency = "CAD"', 'currency = "XXX"')))
    with pytest.raises(ProgramError) as caught:
        parse_program(raw, source="inline")
    assert str(caught.value) == "inline: currency: unknown ISO 4217 currency code 'XXX'"


def test_program_error_is_a_value_error() -> None:
    assert issubclass(ProgramError, ValueError)
    assert isinstance(parse_program(tomllib.loads(VALID)), Program)
