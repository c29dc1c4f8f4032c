"""The demo fakes as one app: their request counts at `/__patron/requests` (what the member
view benchmark reads to count upstream calls per view) and their latencies per upstream."""

from __future__ import annotations

import httpx

from gateway.cli import _parser, fake_latencies
from gateway.demo import IN_PROCESS_BASE, REQUEST_COUNTS_PATH, Fakes, seed_fakes


async def counts(client: httpx.AsyncClient) -> dict[str, int]:
    response = await client.get(f"{IN_PROCESS_BASE}{REQUEST_COUNTS_PATH}")
    assert response.status_code == 200
    return dict(response.json())


async def test_request_counts_start_at_zero_and_do_not_count_themselves() -> None:
    async with Fakes().http_client() as client:
        assert await counts(client) == {"commerce": 0, "commerce_oauth": 0, "cms": 0, "cdp": 0}
        assert await counts(client) == {"commerce": 0, "commerce_oauth": 0, "cms": 0, "cdp": 0}


async def test_request_counts_count_each_upstream_and_commerce_tokens_apart() -> None:
    fakes = Fakes()
    seed_fakes(fakes)
    base = IN_PROCESS_BASE
    async with fakes.http_client() as client:
        token = await client.post(
            f"{base}/ct-auth/oauth/token",
            auth=("patron-demo", "patron-demo-secret"),
            data={"grant_type": "client_credentials"},
        )
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        for _ in range(2):
            cart = await client.get(
                f"{base}/ct-api/patron-demo/carts/customer-id=demo-ava", headers=bearer
            )
            assert cart.status_code == 200
        content = await client.get(f"{base}/cms/content/key/tiers/gold")
        assert content.status_code == 200
        profile = await client.get(
            f"{base}/cdp-profiles/v1/spaces/patron-demo/collections/users/profiles/"
            "user_id:demo-ava/traits",
            auth=("patron-demo-token", ""),
        )
        assert profile.status_code == 200
        assert await counts(client) == {"commerce": 2, "commerce_oauth": 1, "cms": 1, "cdp": 1}
        fakes.reset_requests()
        assert await counts(client) == {"commerce": 0, "commerce_oauth": 0, "cms": 0, "cdp": 0}


def test_each_upstream_latency_defaults_to_latency_ms() -> None:
    args = _parser().parse_args(["fakes", "--latency-ms", "20", "--cms-latency-ms", "5"])
    assert fake_latencies(args) == {"commerce": 0.02, "cms": 0.005, "cdp": 0.02}
    assert fake_latencies(_parser().parse_args(["fakes"])) == {
        "commerce": 0.0,
        "cms": 0.0,
        "cdp": 0.0,
    }


def test_set_latency_sets_each_fake() -> None:
    fakes = Fakes()
    fakes.set_latency(commerce=0.03, cms=0.01, cdp=0.02)
    assert (fakes.commerce.latency, fakes.cms.latency, fakes.cdp.latency) == (0.03, 0.01, 0.02)
