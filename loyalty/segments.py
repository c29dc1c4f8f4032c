"""RFM segments, engagement score and churn risk: the golden record's insights.

Pure functions over a member's activity (no I/O). The store gathers the facts for any number
of members in one query (`LoyaltyReader.segment_activity`); `patron jobs run segments`
materializes the result (`loyalty.insights`), and `Member.insights` reads it.

Features, as of `now` (the window is the last 365 days up to `now`, both ends included):

- **recency**: whole days since the member's last purchase (`None` if it never bought);
- **frequency**: purchases in the window;
- **monetary**: net spend in the window, in program-currency minor units
  (`program_amount - returned_program_amount`);
- **tenure**: whole days since enrolment;
- **purchases**: purchases ever;
- **points uses**: ledger transactions in the window in which the member used points
  (`REDEEM`, `DONATION`, `GIFT_SENT`).

A purchase counts (for recency, frequency and purchases) when something of it was kept:
an order returned in full is no purchase. Days are whole elapsed days (floored).

Segments: a decision list, the first rule that holds wins.

| # | segment    | rule                                                                    |
|---|------------|-------------------------------------------------------------------------|
| 1 | RETAIN     | recency <= ACTIVE_DAYS, frequency >= RETAIN_MIN_PURCHASES and           |
|   |            | monetary >= RETAIN_MIN_SPEND: recent, frequent and valuable             |
| 2 | NURSERY    | tenure < NEW_MEMBER_DAYS, or exactly one purchase ever with             |
|   |            | recency <= LAPSED_DAYS: new members and first-time buyers               |
| 3 | REACTIVATE | never purchased, or recency > LAPSED_DAYS: lapsed                       |
| 4 | NURTURE    | everyone else: two or more purchases, the last within LAPSED_DAYS       |

| threshold            | value                                                              |
|----------------------|--------------------------------------------------------------------|
| NEW_MEMBER_DAYS      | 90                                                                 |
| ACTIVE_DAYS          | 90                                                                 |
| LAPSED_DAYS          | 180                                                                |
| RETAIN_MIN_PURCHASES | 4 purchases in the window                                          |
| RETAIN_MIN_SPEND     | `min_spend` of the program's first public tier above the entry     |
|                      | tier (Club Harry: Silver, 2500 CAD; Harrods Rewards: Green 2,      |
|                      | 1000 GBP); 1000 currency units when the program has no such tier   |

Scores: clipped linear models over four features, each scaled to [0, 1].

| feature | scaled value                                  | engagement weight | churn weight |
|---------|-----------------------------------------------|-------------------|--------------|
| bias    | 1                                             |                   | +0.15        |
| R       | min(recency, 365) / 365; 1 if never purchased | +0.35 on (1 - R)  | +0.70        |
| F       | min(frequency, 12) / 12                       | +0.25             | -0.20        |
| M       | min(monetary / RETAIN_MIN_SPEND, 1)           | +0.25             | -0.15        |
| P       | min(points uses, 4) / 4                       | +0.15             | -0.10        |

    engagement = clip(0.35 * (1 - R) + 0.25 * F + 0.25 * M + 0.15 * P)
    churn risk = clip(0.15 + 0.70 * R - 0.20 * F - 0.15 * M - 0.10 * P)

`clip` bounds to [0, 1]; both are computed in `Decimal` and rounded half up to 3 decimals.
Engagement rises with every feature but recency; churn risk is the mirror image. A member
who never bought and never used points has engagement 0 and churn risk 0.85.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from loyalty.money import Money
from loyalty.program import Program

WINDOW_DAYS = 365
NEW_MEMBER_DAYS = 90
ACTIVE_DAYS = 90
LAPSED_DAYS = 180
RETAIN_MIN_PURCHASES = 4
DEFAULT_RETAIN_MIN_SPEND = Decimal(1000)  # currency units, when the program has one tier

RECENCY_CAP_DAYS = 365
FREQUENCY_CAP = 12
POINTS_USES_CAP = 4

ENGAGEMENT_WEIGHTS: dict[str, Decimal] = {
    "recency": Decimal("0.35"),  # applied to 1 - R
    "frequency": Decimal("0.25"),
    "monetary": Decimal("0.25"),
    "points": Decimal("0.15"),
}
CHURN_BIAS = Decimal("0.15")
CHURN_WEIGHTS: dict[str, Decimal] = {
    "recency": Decimal("0.70"),
    "frequency": Decimal("-0.20"),
    "monetary": Decimal("-0.15"),
    "points": Decimal("-0.10"),
}
_SCORE = Decimal("0.001")


class Segment(enum.StrEnum):
    NURSERY = "NURSERY"
    NURTURE = "NURTURE"
    RETAIN = "RETAIN"
    REACTIVATE = "REACTIVATE"


@dataclass(frozen=True, slots=True)
class Activity:
    """The facts about one member that the store gathers (see the module docstring)."""

    enrolled_at: datetime
    last_purchase_at: datetime | None = None
    purchases: int = 0
    purchases_window: int = 0
    spend_window_minor: int = 0
    points_uses_window: int = 0


@dataclass(frozen=True, slots=True)
class Features:
    tenure_days: int
    recency_days: int | None
    purchases: int
    frequency_12m: int
    spend_12m_minor: int
    points_uses_12m: int


@dataclass(frozen=True, slots=True)
class SegmentRules:
    """The thresholds of the decision list (module docstring)."""

    retain_min_spend_minor: int
    new_member_days: int = NEW_MEMBER_DAYS
    active_days: int = ACTIVE_DAYS
    lapsed_days: int = LAPSED_DAYS
    retain_min_purchases: int = RETAIN_MIN_PURCHASES

    @classmethod
    def for_program(cls, program: Program) -> SegmentRules:
        """RETAIN_MIN_SPEND is the spend of the first public tier above the entry tier."""
        above = [t.min_spend for t in program.public_tiers if t.min_spend > 0]
        spend = min(above) if above else DEFAULT_RETAIN_MIN_SPEND
        return cls(retain_min_spend_minor=Money.of(spend, program.currency).minor)


@dataclass(frozen=True, slots=True)
class Insights:
    member_id: str
    segment: Segment
    recency_days: int | None
    frequency_12m: int
    spend_12m_minor: int
    engagement_score: float
    churn_risk: float
    computed_at: datetime


def activity_window(now: datetime) -> tuple[datetime, datetime]:
    """The window whose purchases and points uses count: [now - 365 days, now]."""
    return now - timedelta(days=WINDOW_DAYS), now


def _days(now: datetime, then: datetime) -> int:
    return max((now - then).days, 0)


def features(activity: Activity, now: datetime) -> Features:
    last = activity.last_purchase_at
    return Features(
        tenure_days=_days(now, activity.enrolled_at),
        recency_days=_days(now, last) if last is not None and activity.purchases > 0 else None,
        purchases=activity.purchases,
        frequency_12m=activity.purchases_window,
        spend_12m_minor=max(activity.spend_window_minor, 0),
        points_uses_12m=activity.points_uses_window,
    )


def segment(f: Features, rules: SegmentRules) -> Segment:
    """The decision list of the module docstring: the first rule that holds wins."""
    recency = f.recency_days
    if (
        recency is not None
        and recency <= rules.active_days
        and f.frequency_12m >= rules.retain_min_purchases
        and f.spend_12m_minor >= rules.retain_min_spend_minor
    ):
        return Segment.RETAIN
    if f.tenure_days < rules.new_member_days:
        return Segment.NURSERY
    if f.purchases == 1 and recency is not None and recency <= rules.lapsed_days:
        return Segment.NURSERY
    if recency is None or recency > rules.lapsed_days:
        return Segment.REACTIVATE
    return Segment.NURTURE


def scaled(f: Features, rules: SegmentRules) -> dict[str, Decimal]:
    """The four features scaled to [0, 1] (R, F, M, P of the module docstring)."""
    recency = (
        Decimal(1)
        if f.recency_days is None
        else Decimal(min(f.recency_days, RECENCY_CAP_DAYS)) / RECENCY_CAP_DAYS
    )
    monetary = Decimal(f.spend_12m_minor) / max(rules.retain_min_spend_minor, 1)
    return {
        "recency": recency,
        "frequency": Decimal(min(f.frequency_12m, FREQUENCY_CAP)) / FREQUENCY_CAP,
        "monetary": min(monetary, Decimal(1)),
        "points": Decimal(min(f.points_uses_12m, POINTS_USES_CAP)) / POINTS_USES_CAP,
    }


def _score(value: Decimal) -> float:
    clipped = min(max(value, Decimal(0)), Decimal(1))
    return float(clipped.quantize(_SCORE, ROUND_HALF_UP))


def engagement_score(f: Features, rules: SegmentRules) -> float:
    x = scaled(f, rules)
    x["recency"] = 1 - x["recency"]
    return _score(sum((ENGAGEMENT_WEIGHTS[k] * x[k] for k in ENGAGEMENT_WEIGHTS), Decimal(0)))


def churn_risk(f: Features, rules: SegmentRules) -> float:
    x = scaled(f, rules)
    return _score(CHURN_BIAS + sum((CHURN_WEIGHTS[k] * x[k] for k in CHURN_WEIGHTS), Decimal(0)))


def insights(member_id: str, activity: Activity, now: datetime, rules: SegmentRules) -> Insights:
    f = features(activity, now)
    return Insights(
        member_id=member_id,
        segment=segment(f, rules),
        recency_days=f.recency_days,
        frequency_12m=f.frequency_12m,
        spend_12m_minor=f.spend_12m_minor,
        engagement_score=engagement_score(f, rules),
        churn_risk=churn_risk(f, rules),
        computed_at=now,
    )
