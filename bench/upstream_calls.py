"""Upstream calls per member view, counted by the fakes themselves.

`patron fakes` answers `GET /__patron/requests` with the requests each fake has served
(`gateway.demo.Fakes.request_counts`): read before and after a phase, the difference over
the requests sent is the calls per member view, whatever the gateway cached, retried or
refreshed in the background meanwhile. Commerce's OAuth token grants are counted apart
(one per token lifetime and worker, not per view) and left out of its calls per view.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from gateway.demo import REQUEST_COUNTS_PATH

UPSTREAMS = ("commerce", "cms", "cdp")


@dataclass(frozen=True, slots=True)
class UpstreamCalls:
    commerce: int = 0
    commerce_oauth: int = 0
    cms: int = 0
    cdp: int = 0

    def __sub__(self, other: UpstreamCalls) -> UpstreamCalls:
        return UpstreamCalls(
            self.commerce - other.commerce,
            self.commerce_oauth - other.commerce_oauth,
            self.cms - other.cms,
            self.cdp - other.cdp,
        )

    def per_view(self, views: int) -> dict[str, float]:
        """Calls per member view of each upstream (OAuth token grants left out)."""
        return {name: getattr(self, name) / max(1, views) for name in UPSTREAMS}


async def read_calls(client: httpx.AsyncClient, fakes_base: str) -> UpstreamCalls | None:
    """The fakes' counts now; None (said on the console) when they cannot be read: the
    phase's other numbers still stand, its calls per view are then not reported."""
    try:
        response = await client.get(f"{fakes_base}{REQUEST_COUNTS_PATH}")
        response.raise_for_status()
        counts = response.json()
        return UpstreamCalls(
            commerce=int(counts["commerce"]),
            commerce_oauth=int(counts["commerce_oauth"]),
            cms=int(counts["cms"]),
            cdp=int(counts["cdp"]),
        )
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        print(f"  warning: the fakes' request counts could not be read: {exc!r}", flush=True)
        return None


def difference(after: UpstreamCalls | None, before: UpstreamCalls | None) -> UpstreamCalls | None:
    return after - before if after is not None and before is not None else None
