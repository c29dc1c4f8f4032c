"""RFM segments, engagement and churn risk (`loyalty.segments`): a generated population whose
segments are known by construction, every threshold's boundary, hand-computed scores and
monotonicity."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from loyalty.program import load_program
from loyalty.segments import (
    Activity,
    Features,
    Segment,
    SegmentRules,
    churn_risk,
    engagement_score,
    features,
    insights,
    segment,
)

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
THRESHOLD = 250_000  # 2500.00: Club Harry's Silver
RULES = SegmentRules(retain_min_spend_minor=THRESHOLD)


def ago(days: int, hours: int = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours)


def activity(
    tenure: int,
    recency: int | None = None,
    purchases: int = 0,
    window: int | None = None,
    spend: int = 0,
    uses: int = 0,
) -> Activity:
    """Activity with whole-day ages; `window` defaults to every purchase when the last one is
    within 365 days, else none."""
    if window is None:
        window = purchases if recency is not None and recency <= 365 else 0
    return Activity(
        enrolled_at=ago(tenure),
        last_purchase_at=ago(recency) if recency is not None else None,
        purchases=purchases,
        purchases_window=window,
        spend_window_minor=spend,
        points_uses_window=uses,
    )


def classify(a: Activity) -> Segment:
    return segment(features(a, NOW), RULES)


# --- a generated population with known answers --------------------------------------------
def _retain(rng: random.Random) -> Activity:
    window = rng.randint(4, 40)
    return activity(
        tenure=rng.randint(0, 3000),
        recency=rng.randint(0, 90),
        purchases=window + rng.randint(0, 50),
        window=window,
        spend=rng.randint(THRESHOLD, 20 * THRESHOLD),
        uses=rng.randint(0, 10),
    )


def _nursery_new(rng: random.Random) -> Activity:
    tenure = rng.randint(0, 89)
    purchases = rng.randint(0, 3)  # fewer than 4: never RETAIN
    recency = rng.randint(0, tenure) if purchases else None
    return activity(tenure, recency, purchases, spend=rng.randint(0, 5 * THRESHOLD) * purchases)


def _nursery_first_time(rng: random.Random) -> Activity:
    return activity(
        tenure=rng.randint(90, 3000),
        recency=rng.randint(0, 180),
        purchases=1,
        spend=rng.randint(1, 10 * THRESHOLD),
        uses=rng.randint(0, 3),
    )


def _reactivate(rng: random.Random) -> Activity:
    tenure = rng.randint(181, 3000)
    if rng.random() < 0.3:
        return activity(tenure=rng.randint(90, 3000), uses=rng.randint(0, 2))
    recency = rng.randint(181, tenure)
    purchases = rng.randint(1, 60)
    window = rng.randint(1, purchases) if recency <= 365 else 0
    spend = rng.randint(0, 5 * THRESHOLD) if window else 0
    return activity(tenure, recency, purchases, window, spend, rng.randint(0, 5))


def _nurture(rng: random.Random) -> Activity:
    tenure = rng.randint(90, 3000)
    purchases = rng.randint(2, 80)
    window = rng.randint(1, purchases)
    kind = rng.choice(("cooling", "infrequent", "low-value"))
    if kind == "cooling":  # bought 91 to 180 days ago: not recent enough for RETAIN
        recency = rng.randint(91, 180)
        spend = rng.randint(0, 20 * THRESHOLD)
    elif kind == "infrequent":  # recent, but fewer than 4 purchases this year
        recency, window = rng.randint(0, 90), min(window, 3)
        spend = rng.randint(0, 20 * THRESHOLD)
    else:  # recent and frequent, but under the spend threshold
        recency, window = rng.randint(0, 90), max(window, 4)
        purchases = max(purchases, window)
        spend = rng.randint(0, THRESHOLD - 1)
    return activity(tenure, recency, purchases, window, spend, rng.randint(0, 5))


GENERATORS = {
    "retain": (_retain, Segment.RETAIN),
    "nursery-new": (_nursery_new, Segment.NURSERY),
    "nursery-first-time": (_nursery_first_time, Segment.NURSERY),
    "reactivate": (_reactivate, Segment.REACTIVATE),
    "nurture": (_nurture, Segment.NURTURE),
}


def population(n: int = 200, seed: int = 4) -> list[tuple[str, Activity, Segment]]:
    rng = random.Random(seed)
    kinds = sorted(GENERATORS)
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        make, expected = GENERATORS[kind]
        out.append((f"{kind}-{i}", make(rng), expected))
    return out


def test_every_member_of_a_generated_population_lands_in_its_known_segment() -> None:
    members = population()
    wrong = [(name, a, classify(a), want) for name, a, want in members if classify(a) != want]
    assert wrong == []
    counts = {s: sum(1 for _, a, _ in members if classify(a) == s) for s in Segment}
    assert counts == {
        Segment.RETAIN: 40,
        Segment.NURSERY: 80,
        Segment.REACTIVATE: 40,
        Segment.NURTURE: 40,
    }


def test_other_seeds_agree_too() -> None:
    for seed in range(1, 6):
        for name, a, want in population(100, seed):
            assert classify(a) == want, (seed, name, a)


# --- the boundaries ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "expected"),
    [
        # NEW_MEMBER_DAYS = 90: tenure 89 is new, 90 is not.
        (activity(tenure=89), Segment.NURSERY),
        (activity(tenure=90), Segment.REACTIVATE),
        (Activity(enrolled_at=ago(89, hours=23)), Segment.NURSERY),  # whole days, floored
        (Activity(enrolled_at=ago(90, hours=1)), Segment.REACTIVATE),
        # LAPSED_DAYS = 180, a one-time buyer: 180 days is a first-timer, 181 lapsed.
        (activity(tenure=400, recency=180, purchases=1), Segment.NURSERY),
        (activity(tenure=400, recency=181, purchases=1), Segment.REACTIVATE),
        # LAPSED_DAYS = 180, a repeat buyer.
        (activity(tenure=400, recency=180, purchases=2), Segment.NURTURE),
        (activity(tenure=400, recency=181, purchases=2), Segment.REACTIVATE),
        # ACTIVE_DAYS = 90 for RETAIN.
        (activity(tenure=400, recency=90, purchases=4, spend=THRESHOLD), Segment.RETAIN),
        (activity(tenure=400, recency=91, purchases=4, spend=THRESHOLD), Segment.NURTURE),
        # RETAIN_MIN_PURCHASES = 4 in the window.
        (activity(tenure=400, recency=10, purchases=9, window=3, spend=THRESHOLD), Segment.NURTURE),
        (activity(tenure=400, recency=10, purchases=9, window=4, spend=THRESHOLD), Segment.RETAIN),
        # RETAIN_MIN_SPEND, net of returns, in the window.
        (activity(tenure=400, recency=10, purchases=4, spend=THRESHOLD - 1), Segment.NURTURE),
        (activity(tenure=400, recency=10, purchases=4, spend=THRESHOLD), Segment.RETAIN),
        # The decision list's order: RETAIN before NURSERY, NURSERY before REACTIVATE.
        (activity(tenure=30, recency=1, purchases=4, spend=THRESHOLD), Segment.RETAIN),
        (activity(tenure=30, recency=1, purchases=3, spend=9 * THRESHOLD), Segment.NURSERY),
        (activity(tenure=89), Segment.NURSERY),
        # Never bought, not new: REACTIVATE (points uses do not make a purchase).
        (activity(tenure=1000, uses=9), Segment.REACTIVATE),
    ],
)
def test_thresholds(a: Activity, expected: Segment) -> None:
    assert classify(a) == expected


def test_features_are_whole_days_and_recency_is_none_for_who_never_bought() -> None:
    a = Activity(
        enrolled_at=ago(400, hours=23),
        last_purchase_at=ago(6, hours=23),
        purchases=3,
        purchases_window=2,
        spend_window_minor=12_345,
        points_uses_window=1,
    )
    assert features(a, NOW) == Features(
        tenure_days=400,
        recency_days=6,
        purchases=3,
        frequency_12m=2,
        spend_12m_minor=12_345,
        points_uses_12m=1,
    )
    assert features(Activity(enrolled_at=ago(3)), NOW).recency_days is None
    # A purchase stamped a little in the future (clock skew) is 0 days ago, not -1.
    skewed = Activity(enrolled_at=ago(3), last_purchase_at=NOW + timedelta(hours=2), purchases=1)
    assert features(skewed, NOW).recency_days == 0


def test_rules_follow_the_programs_tiers() -> None:
    club_harry = load_program(ROOT / "programs" / "club-harry.toml")
    harrods = load_program(ROOT / "programs" / "harrods-rewards.toml")
    diamond = load_program(ROOT / "programs" / "diamond-club.toml")
    assert SegmentRules.for_program(club_harry).retain_min_spend_minor == 250_000  # Silver
    assert SegmentRules.for_program(harrods).retain_min_spend_minor == 100_000  # Green 2
    first_above = min(t.min_spend for t in diamond.public_tiers if t.min_spend > 0)
    assert SegmentRules.for_program(diamond).retain_min_spend_minor == int(first_above * 100)
    one_tier = dataclasses.replace(club_harry, tiers=club_harry.tiers[:1])
    assert SegmentRules.for_program(one_tier).retain_min_spend_minor == 100_000  # the default


# --- the scores ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "engagement", "churn"),
    [
        # Never bought, never used points: R = 1, F = M = P = 0.
        # engagement 0; churn 0.15 + 0.70 = 0.85.
        (activity(tenure=400), 0.0, 0.85),
        # R = 30/365, F = 6/12, M = 1 (spend above the threshold), P = 2/4:
        # 0.35 * 335/365 + 0.125 + 0.25 + 0.075 = 0.77123...; churn below 0 -> 0.
        (activity(400, 30, 10, window=6, spend=2 * THRESHOLD, uses=2), 0.771, 0.0),
        # R = 200/365, F = 1/12, M = 0.5, P = 0:
        # 0.35 * 165/365 + 0.25/12 + 0.125 = 0.30405...
        # 0.15 + 0.70 * 200/365 - 0.20/12 - 0.075 = 0.44189...
        (activity(400, 200, 3, window=1, spend=THRESHOLD // 2), 0.304, 0.442),
        # Recency capped at 365 (R = 1), P = 1/4: 0.15 * 0.25 = 0.0375, rounded half up.
        # churn 0.15 + 0.70 - 0.025 = 0.825.
        (activity(900, 500, 2, uses=1), 0.038, 0.825),
        # Everything at its cap: R = 0, F = M = P = 1.
        (activity(900, 0, 40, window=30, spend=9 * THRESHOLD, uses=9), 1.0, 0.0),
        # R = 5/365, F = 2/12, M = 0.2 (500.00 of 2500.00), P = 0:
        # 0.35 * 360/365 + 0.25/6 + 0.05 = 0.43687...; 0.15 + 0.70 * 5/365 - 0.2/6 - 0.03 = 0.09626...
        (activity(15, 5, 2, spend=50_000), 0.437, 0.096),
    ],
)
def test_scores_are_the_documented_formulas(a: Activity, engagement: float, churn: float) -> None:
    f = features(a, NOW)
    assert engagement_score(f, RULES) == engagement
    assert churn_risk(f, RULES) == churn
    result = insights("m-1", a, NOW, RULES)
    assert (result.engagement_score, result.churn_risk) == (engagement, churn)
    assert result.computed_at == NOW


def _more(f: Features, **changes: int) -> Features:
    return dataclasses.replace(f, **changes)


def test_scores_are_bounded_and_monotonic_in_every_feature() -> None:
    for _, a, _ in population(200, seed=11):
        f = features(a, NOW)
        e, c = engagement_score(f, RULES), churn_risk(f, RULES)
        assert 0 <= e <= 1 and 0 <= c <= 1
        # More purchases, more spend, more points uses: never less engaged, never riskier.
        for better in (
            _more(f, frequency_12m=f.frequency_12m + 1),
            _more(f, spend_12m_minor=f.spend_12m_minor + THRESHOLD // 10),
            _more(f, points_uses_12m=f.points_uses_12m + 1),
        ):
            assert engagement_score(better, RULES) >= e
            assert churn_risk(better, RULES) <= c
        # A later last purchase (or a first one): never more engaged, never safer.
        if f.recency_days is not None:
            older = _more(f, recency_days=f.recency_days + 30)
            assert engagement_score(older, RULES) <= e
            assert churn_risk(older, RULES) >= c


def test_each_feature_moves_the_scores_strictly_away_from_the_caps() -> None:
    base = features(activity(400, 100, 3, window=2, spend=THRESHOLD // 4, uses=1), NOW)
    e, c = engagement_score(base, RULES), churn_risk(base, RULES)
    for changes in (
        {"recency_days": 50},
        {"frequency_12m": 5},
        {"spend_12m_minor": THRESHOLD // 2},
        {"points_uses_12m": 3},
    ):
        better = _more(base, **changes)
        assert engagement_score(better, RULES) > e, changes
        assert churn_risk(better, RULES) < c, changes
