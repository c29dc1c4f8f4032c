"""The golden record's insights through GraphQL: `Member.insights` (staff only), live and
after `patron jobs run segments`, `members(segment:)` on a population with known segments,
the job's idempotency, the SQL cost of insights for a page of members, and `topCustomers`.

Club Harry (CAD): RETAIN_MIN_SPEND is Silver's 2500.00; the rules and weights are in
`loyalty/segments.py`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from adapters.db import tables as t
from gateway.demo import Fakes
from gateway.jobs import run_job
from gateway.settings import Settings
from tests.conftest import START, Harness, token
from tests.graphql.conftest import enroll, purchase

INSIGHTS = "insights { segment recencyDays frequency12m spend12m { amount currencyCode } engagementScore churnRisk computedAt }"
MEMBER_INSIGHTS = f"query($id: ID!) {{ member(id: $id) {{ {INSIGHTS} }} }}"
SEGMENT_SEARCH = """
query($segment: RfmSegment, $search: String, $tierKey: String, $first: Int = 20, $after: String) {
  members(segment: $segment, search: $search, tierKey: $tierKey, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { externalIds { commerceCustomerId } insights { segment } } }
  }
}
"""
SVC = token("pos-1", "service")
ASSOCIATE = token("assoc-1", "associate", store="TOR-1")
MARKETER = token("mkt-1", "marketer")


async def insights(h: Harness, member_id: str, tok: str = ASSOCIATE) -> dict[str, Any]:
    body = await h.gql(MEMBER_INSIGHTS, {"id": member_id}, tok)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["member"]["insights"]
    return result


async def mutate(h: Harness, name: str, input: dict[str, Any]) -> None:
    body = await h.gql(
        f"mutation($i: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $i) {{ userErrors {{ code message }} }} }}",
        {"i": input},
        SVC,
    )
    assert "errors" not in body, body
    assert body["data"][name]["userErrors"] == [], body


async def return_order(h: Harness, order_id: str, amount: str | None = None) -> None:
    money = {"amount": amount, "currencyCode": "CAD"} if amount else None
    await mutate(
        h,
        "returnPurchase",
        {"orderId": order_id, "amount": money, "idempotencyKey": f"ret-{order_id}"},
    )


async def run_segments(settings: Settings, h: Harness) -> str:
    http = Fakes().http_client()
    try:
        return await run_job(settings, "segments", http=http, clock=h.clock)
    finally:
        await http.aclose()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


# --- one member, live and materialized ----------------------------------------------------
async def test_insights_are_exact_live_and_after_the_job(
    harness: Harness, settings: Settings
) -> None:
    h = harness
    ava = await enroll(h, "ava")
    await purchase(h, ava, "ava-1", "300.00")
    h.clock.advance(days=31)  # the 300 points are available now
    await purchase(h, ava, "ava-2", "200.00")
    await mutate(h, "redeemPoints", {"memberId": ava, "points": 100, "idempotencyKey": "redeem-1"})
    h.clock.advance(days=5)

    # Live (the job has not run): enrolled 36 days ago -> NURSERY. R = 5/365, F = 2/12,
    # M = 500.00 / 2500.00 = 0.2, P = 1/4 (one redemption):
    # engagement 0.35 * 360/365 + 0.25 * 2/12 + 0.25 * 0.2 + 0.15 * 0.25 = 0.47437...
    # churn      0.15 + 0.70 * 5/365 - 0.20 * 2/12 - 0.15 * 0.2 - 0.10 * 0.25 = 0.07126...
    expected = {
        "segment": "NURSERY",
        "recencyDays": 5,
        "frequency12m": 2,
        "spend12m": {"amount": "500.00", "currencyCode": "CAD"},
        "engagementScore": 0.474,
        "churnRisk": 0.071,
        "computedAt": iso(h.clock.now),
    }
    assert await insights(h, ava) == expected
    assert await insights(h, ava, MARKETER) == expected
    assert await insights(h, ava, token("admin-1", "admin")) == expected

    job_time = h.clock.now
    assert await run_segments(settings, h) == (
        "1 members segmented: nursery 1, nurture 0, retain 0, reactivate 0"
    )
    # A day and a purchase later the snapshot still answers, as of the job's run.
    h.clock.advance(days=1)
    await purchase(h, ava, "ava-3", "2000.00")
    assert await insights(h, ava) == expected | {"computedAt": iso(job_time)}

    # The next run sees the new purchase: R = 0, F = 3/12, M = 2500/2500 = 1, P = 1/4.
    # engagement 0.35 + 0.0625 + 0.25 + 0.0375 = 0.7; churn 0.15 - 0.05 - 0.15 - 0.025 < 0.
    assert await run_segments(settings, h) == (
        "1 members segmented: nursery 1, nurture 0, retain 0, reactivate 0"
    )
    assert await insights(h, ava) == {
        "segment": "NURSERY",  # still enrolled under 90 days, and only 3 purchases
        "recencyDays": 0,
        "frequency12m": 3,
        "spend12m": {"amount": "2500.00", "currencyCode": "CAD"},
        "engagementScore": 0.7,
        "churnRisk": 0.0,
        "computedAt": iso(h.clock.now),
    }


async def test_insights_are_for_staff_only(harness: Harness) -> None:
    h = harness
    ava = await enroll(h, "ava")
    await purchase(h, ava, "ava-1", "300.00")

    body = await h.gql(
        f"{{ me {{ externalIds {{ commerceCustomerId }} {INSIGHTS} }} }}",
        token=token("ava", "member"),
    )
    assert body["data"] == {"me": {"externalIds": {"commerceCustomerId": "ava"}, "insights": None}}
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["me", "insights"], "NOT_ALLOWED")
    ]
    # POS and back-office systems (service) read members, not their insights.
    body = await h.gql(MEMBER_INSIGHTS, {"id": ava}, SVC)
    assert body["data"] == {"member": {"insights": None}}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_ALLOWED"]
    # Nor may a member filter members by segment.
    body = await h.gql(SEGMENT_SEARCH, {"segment": "NURSERY"}, token("ava", "member"))
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_ALLOWED"]


# --- a population with known segments -----------------------------------------------------
# name: (enrolled days ago, [(order, days ago, amount)], [(order, days ago, amount returned)])
POPULATION: dict[str, tuple[int, list[tuple[str, int, str]], list[tuple[str, int, str | None]]]] = {
    # NURSERY: new (enrolled < 90 days ago), bought or not; or a first-time buyer.
    "nina": (10, [], []),
    "noah": (30, [("noah-1", 20, "300.00")], []),
    "fay": (400, [("fay-1", 100, "900.00")], []),
    # RETAIN: within 90 days, 4 purchases this year, 2800.00 >= 2500.00.
    "rita": (400, [(f"rita-{d}", d, "700.00") for d in (80, 60, 40, 10)], []),
    # NURTURE: the same, but 400.00 went back: 2400.00 net is under 2500.00.
    "ross": (
        400,
        [(f"ross-{d}", d, "700.00") for d in (80, 60, 40, 10)],
        [("ross-40", 5, "400.00")],
    ),
    # NURTURE: cooling (last bought 120 days ago), and infrequent (2 purchases).
    "nell": (400, [("nell-1", 150, "3000.00"), ("nell-2", 120, "3000.00")], []),
    "nate": (400, [("nate-1", 30, "80.00"), ("nate-2", 20, "120.00")], []),
    # REACTIVATE: lapsed over 180 days, never bought, or bought only what went back.
    "lara": (400, [("lara-1", 300, "500.00"), ("lara-2", 200, "500.00")], []),
    "vic": (400, [], []),
    "leo": (400, [("leo-1", 190, "250.00")], []),
    "fred": (400, [("fred-1", 50, "1200.00")], [("fred-1", 45, None)]),
}
EXPECTED = {
    "NURSERY": ["fay", "nina", "noah"],
    "RETAIN": ["rita"],
    "NURTURE": ["nate", "nell", "ross"],
    "REACTIVATE": ["fred", "lara", "leo", "vic"],
}


async def populate(h: Harness) -> dict[str, str]:
    """Replay the population's enrolments, purchases and returns in time order; the clock
    ends at START."""
    events: list[tuple[int, int, str, tuple[str, ...]]] = []
    for name, (enrolled, bought, returned) in POPULATION.items():
        events.append((-enrolled, 0, "enroll", (name,)))
        events += [(-d, 1, "purchase", (name, order, amount)) for order, d, amount in bought]
        events += [(-d, 2, "return", (order, amount or "")) for order, d, amount in returned]
    ids: dict[str, str] = {}
    for days, _, kind, args in sorted(events):
        h.clock.now = START + timedelta(days=days)
        if kind == "enroll":
            ids[args[0]] = await enroll(h, args[0])
        elif kind == "purchase":
            result = await purchase(h, ids[args[0]], args[1], args[2])
            assert result["userErrors"] == [], result
        else:
            await return_order(h, args[0], args[1] or None)
    h.clock.now = START
    return ids


async def search(h: Harness, tok: str = MARKETER, **variables: Any) -> tuple[int, list[str]]:
    body = await h.gql(SEGMENT_SEARCH, variables, tok)
    assert "errors" not in body, body
    page = body["data"]["members"]
    names = sorted(e["node"]["externalIds"]["commerceCustomerId"] for e in page["edges"])
    for edge in page["edges"]:
        if "segment" in variables:
            assert edge["node"]["insights"]["segment"] == variables["segment"]
    return page["totalCount"], names


async def test_members_by_segment_on_a_population_with_known_answers(
    harness: Harness, settings: Settings
) -> None:
    h = harness
    ids = await populate(h)

    # Before the job the filter has nothing to read (insights themselves are live).
    assert await search(h, segment="REACTIVATE") == (0, [])
    assert (await insights(h, ids["lara"]))["segment"] == "REACTIVATE"

    assert await run_segments(settings, h) == (
        "11 members segmented: nursery 3, nurture 3, retain 1, reactivate 4"
    )
    for segment, names in EXPECTED.items():
        assert await search(h, segment=segment) == (len(names), names), segment
        assert await search(h, ASSOCIATE, segment=segment) == (len(names), names), segment
    # Combined with the text search and the tier.
    assert await search(h, segment="REACTIVATE", search="l") == (2, ["lara", "leo"])
    assert await search(h, segment="RETAIN", tierKey="silver") == (1, ["rita"])
    assert await search(h, segment="RETAIN", tierKey="gold") == (0, [])
    # Paged: totalCount counts the whole segment.
    body = await h.gql(SEGMENT_SEARCH, {"segment": "REACTIVATE", "first": 3}, MARKETER)
    page = body["data"]["members"]
    assert (page["totalCount"], len(page["edges"]), page["pageInfo"]["hasNextPage"]) == (4, 3, True)
    rest = await h.gql(
        SEGMENT_SEARCH,
        {"segment": "REACTIVATE", "first": 3, "after": page["pageInfo"]["endCursor"]},
        MARKETER,
    )
    seen = [e["node"]["externalIds"]["commerceCustomerId"] for e in page["edges"]]
    seen += [
        e["node"]["externalIds"]["commerceCustomerId"] for e in rest["data"]["members"]["edges"]
    ]
    assert sorted(seen) == EXPECTED["REACTIVATE"]

    at = iso(START)
    assert await insights(h, ids["rita"]) == {
        # R = 10/365, F = 4/12, M = 1: 0.35 * 355/365 + 0.25/3 + 0.25 = 0.67374...
        "segment": "RETAIN",
        "recencyDays": 10,
        "frequency12m": 4,
        "spend12m": {"amount": "2800.00", "currencyCode": "CAD"},
        "engagementScore": 0.674,
        "churnRisk": 0.0,
        "computedAt": at,
    }
    assert await insights(h, ids["ross"]) == {
        # M = 2400/2500 = 0.96: 0.35 * 355/365 + 0.25/3 + 0.24 = 0.66374...
        "segment": "NURTURE",
        "recencyDays": 10,
        "frequency12m": 4,
        "spend12m": {"amount": "2400.00", "currencyCode": "CAD"},
        "engagementScore": 0.664,
        "churnRisk": 0.0,
        "computedAt": at,
    }
    assert await insights(h, ids["lara"]) == {
        # R = 200/365, F = 2/12, M = 0.4: 0.35 * 165/365 + 0.25/6 + 0.1 = 0.29988...
        # churn 0.15 + 0.70 * 200/365 - 0.20/6 - 0.15 * 0.4 = 0.44022...
        "segment": "REACTIVATE",
        "recencyDays": 200,
        "frequency12m": 2,
        "spend12m": {"amount": "1000.00", "currencyCode": "CAD"},
        "engagementScore": 0.3,
        "churnRisk": 0.44,
        "computedAt": at,
    }
    assert await insights(h, ids["fred"]) == {
        # The only order went back in full: no purchase, no spend.
        "segment": "REACTIVATE",
        "recencyDays": None,
        "frequency12m": 0,
        "spend12m": {"amount": "0.00", "currencyCode": "CAD"},
        "engagementScore": 0.0,
        "churnRisk": 0.85,
        "computedAt": at,
    }


async def _rows(h: Harness) -> list[tuple[Any, ...]]:
    ms = t.member_segments
    async with h.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(select(ms).order_by(ms.c.member_id))).all()]


async def test_the_segments_job_is_idempotent(harness: Harness, settings: Settings) -> None:
    h = harness
    await populate(h)
    first = await run_segments(settings, h)
    rows = await _rows(h)
    assert len(rows) == 11
    assert await run_segments(settings, h) == first
    assert await _rows(h) == rows
    # Time passes: the same members, re-scored in place.
    h.clock.advance(days=100)
    assert await run_segments(settings, h) == (
        "11 members segmented: nursery 1, nurture 3, retain 0, reactivate 7"
    )
    after = await _rows(h)
    assert [r[0] for r in after] == [r[0] for r in rows]
    assert {r[-1] for r in after} == {h.clock.now}


async def test_insights_for_a_page_of_members_cost_the_same_sql_for_5_and_20(
    harness: Harness, settings: Settings
) -> None:
    h = harness
    for i in range(20):
        member = await enroll(h, f"cust-{i:02d}")
        for j in range(i % 3):
            await purchase(h, member, f"o-{i}-{j}", f"{100 * (i + 1)}.00")
    query = (
        "query($first: Int!) { members(first: $first) { edges { node { "
        "insights { segment recencyDays frequency12m spend12m { amount } engagementScore churnRisk } } } } }"
    )

    async def run(first: int) -> tuple[int, list[str]]:
        h.sql.reset()
        body = await h.gql(query, {"first": first}, ASSOCIATE)
        assert "errors" not in body, body
        assert len(body["data"]["members"]["edges"]) == first
        return h.sql.count, [q.split("\n")[0][:60] for q in h.sql.queries]

    # Live (no job yet): the member page (count and rows), the materialized insights (none),
    # and one activity query for all the members.
    live_5, live_20 = await run(5), await run(20)
    assert live_5[0] == live_20[0] == 4, live_20[1]
    await run_segments(settings, h)
    stored_5, stored_20 = await run(5), await run(20)
    assert stored_5[0] == stored_20[0] == 3, stored_20[1]


# --- top customers -------------------------------------------------------------------------
TOP = """
query($month: String!, $first: Int = 10) {
  topCustomers(month: $month, first: $first) {
    member { externalIds { commerceCustomerId } } spend { amount currencyCode } orders
  }
}
"""


async def test_top_customers_by_month_net_of_returns(harness: Harness) -> None:
    h = harness
    h.clock.now = datetime(2026, 10, 15, 12, tzinfo=UTC)
    ids = {name: await enroll(h, name) for name in ("ava", "ben", "cy", "dee", "eve")}

    async def buy(name: str, order: str, amount: str, at: datetime) -> None:
        h.clock.now = at
        result = await purchase(h, ids[name], order, amount)
        assert result["userErrors"] == [], result

    # Club Harry's months are Toronto's: 2026-11-01T03:00Z is 23:00 on 31 October (EDT),
    # 2026-12-01T03:00Z is 22:00 on 30 November (EST).
    await buy("cy", "cy-oct", "5000.00", datetime(2026, 11, 1, 3, tzinfo=UTC))
    await buy("ava", "ava-1", "600.00", datetime(2026, 11, 5, 12, tzinfo=UTC))
    await buy("ben", "ben-1", "1500.00", datetime(2026, 11, 10, 12, tzinfo=UTC))
    h.clock.now = datetime(2026, 11, 12, 12, tzinfo=UTC)
    await return_order(h, "ben-1", "700.00")  # ben: 800.00 net
    await buy("cy", "cy-nov", "100.00", datetime(2026, 11, 15, 12, tzinfo=UTC))
    await buy("ava", "ava-2", "400.00", datetime(2026, 11, 20, 12, tzinfo=UTC))
    await buy("dee", "dee-1", "900.00", datetime(2026, 12, 1, 3, tzinfo=UTC))
    await buy("eve", "eve-1", "2000.00", datetime(2026, 12, 2, 12, tzinfo=UTC))

    def row(name: str, amount: str, orders: int) -> dict[str, Any]:
        return {
            "member": {"externalIds": {"commerceCustomerId": name}},
            "spend": {"amount": amount, "currencyCode": "CAD"},
            "orders": orders,
        }

    body = await h.gql(TOP, {"month": "2026-11"}, MARKETER)
    assert body == {
        "data": {
            "topCustomers": [
                row("ava", "1000.00", 2),
                row("dee", "900.00", 1),
                row("ben", "800.00", 1),
                row("cy", "100.00", 1),
            ]
        }
    }
    body = await h.gql(TOP, {"month": "2026-11", "first": 2}, token("admin-1", "admin"))
    assert body["data"]["topCustomers"] == [row("ava", "1000.00", 2), row("dee", "900.00", 1)]
    assert (await h.gql(TOP, {"month": "2026-10"}, MARKETER))["data"]["topCustomers"] == [
        row("cy", "5000.00", 1)
    ]
    assert (await h.gql(TOP, {"month": "2026-12"}, MARKETER))["data"]["topCustomers"] == [
        row("eve", "2000.00", 1)
    ]
    assert (await h.gql(TOP, {"month": "2026-09"}, MARKETER))["data"]["topCustomers"] == []

    for tok, code in (
        (token("ava", "member"), "NOT_ALLOWED"),
        (ASSOCIATE, "NOT_ALLOWED"),
        (SVC, "NOT_ALLOWED"),
        (None, "UNAUTHENTICATED"),
    ):
        body = await h.gql(TOP, {"month": "2026-11"}, tok)
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == [code]
    body = await h.gql(TOP, {"month": "2026-13"}, MARKETER)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_INPUT"]
