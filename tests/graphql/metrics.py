"""Reading `/metrics` in tests: the samples of Patron's own metrics, exactly."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, tuple[tuple[str, str], ...]]


async def scrape(client: httpx.AsyncClient, **headers: str) -> dict[Sample, float]:
    """Every `patron_*` sample of `/metrics` but histogram buckets and sums (their values
    depend on the clock): `{(name, ((label, value), ...)): value}`, labels sorted."""
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return samples(response.text)


def samples(text: str) -> dict[Sample, float]:
    found: dict[Sample, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if not name.startswith("patron_") or name.endswith(("_bucket", "_sum")):
                continue
            found[(name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def only(found: dict[Sample, float], prefix: str) -> dict[Sample, float]:
    """The samples of the metrics whose name starts with `prefix`."""
    return {key: value for key, value in found.items() if key[0].startswith(prefix)}


def nonzero(found: dict[Sample, float]) -> dict[Sample, float]:
    return {key: value for key, value in found.items() if value}


def s(name: str, **labels: str) -> Sample:
    """A sample's key: `s("patron_cache_lookups_total", cache="cms", result="hit")`."""
    return (name, tuple(sorted(labels.items())))
