"""The Prometheus metrics of one gateway: every metric Patron exposes, how each is recorded,
and their exposition in the text format (`/metrics`, `gateway.metrics_endpoint`).

`Metrics` is made in `create_app` with its own `CollectorRegistry` (never the global one),
so two apps in one process (the tests) never share a value. The parts that record are given
it, or a narrow piece of it, as a hook: the HTTP middleware (`gateway.observed_requests`),
the upstream policy (`gateway.upstream_telemetry`), the caches (`cache(name)`), the SQL store
(`transactions_posted`, the domain's `PostingEvents`), the webhooks
(`gateway.observed_webhooks`).

Several processes (`patron serve --workers N`): prometheus-client's multiprocess mode. The
CLI gives the workers a `PROMETHEUS_MULTIPROC_DIR` (`gateway.metrics_multiprocess`); each
value then lives in a memory-mapped file per process, and `exposition()` merges every
process's files, so whichever worker answers a scrape reports the totals. The breaker gauge
is `livemax` there: the worst state any live worker's breaker of that host is in.

Labels are bounded: operation names by `gateway.observed_requests.OperationNames`, every
other label is one of a fixed set (upstreams, error codes, caches, transaction kinds, webhook
endpoints and outcomes).
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

from adapters.http import BreakerState
from loyalty.ports import PostedTransaction

__all__ = ["BREAKER_STATE_VALUES", "CONTENT_TYPE", "CacheCounts", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # the text exposition format

# The breaker gauge's values: higher is worse, so `max` over workers is the worst state.
BREAKER_STATE_VALUES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}

# Seconds. A member view takes tens of milliseconds; an upstream call is bounded by the
# request deadline (2.5 s) and a retried one by the policy.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)


class CacheCounts:
    """One cache's lookups (`adapters.cache.swr.CacheObserver`): each id looked up is a hit
    (served fresh), stale (served past its fresh TTL: while refreshed, or because the
    upstream failed) or a miss (fetched from the upstream, or failed)."""

    def __init__(self, counter: Counter, cache: str) -> None:
        self._hit = counter.labels(cache, "hit")
        self._stale = counter.labels(cache, "stale")
        self._miss = counter.labels(cache, "miss")

    def looked_up(self, hits: int, stale: int, misses: int) -> None:
        if hits:
            self._hit.inc(hits)
        if stale:
            self._stale.inc(stale)
        if misses:
            self._miss.inc(misses)


class Metrics:
    """Every metric of the gateway (the README's Observability table lists them)."""

    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        # No `<counter>_created` series: a start time per label set that nobody graphs.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry = CollectorRegistry(auto_describe=False)
        if multiprocess_dir is None:
            # CPU, memory, open files of this process (meaningless summed over workers).
            ProcessCollector(registry=registry)

        # --- GraphQL over HTTP ------------------------------------------------------------
        self.graphql_requests = Counter(
            "patron_graphql_requests",
            "GraphQL HTTP requests by operation name, operation type and outcome.",
            ["operation", "type", "outcome"],
            registry=registry,
        )
        self.graphql_duration = Histogram(
            "patron_graphql_request_duration_seconds",
            "Time from a GraphQL HTTP request's arrival to the end of its answer.",
            ["operation", "type"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # The rate limiter (issue 6, item 3) counts its refusals here: `rate_limit_refused`.
        self.rate_limit_refusals = Counter(
            "patron_rate_limit_refusals",
            "Requests refused by a rate limit (429), by limit.",
            ["limit"],
            registry=registry,
        )

        # --- upstreams -----------------------------------------------------------------------
        self.upstream_requests = Counter(
            "patron_upstream_requests",
            "Calls to an upstream (one per shared read, retries included) by outcome: ok "
            "(a reply the adapter reads, 404 included) or the error code.",
            ["upstream", "outcome"],
            registry=registry,
        )
        self.upstream_duration = Histogram(
            "patron_upstream_request_duration_seconds",
            "Time an upstream call took, its retries and back-off included.",
            ["upstream"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_retries = Counter(
            "patron_upstream_retries",
            "Attempts after an upstream call's first one.",
            ["upstream"],
            registry=registry,
        )
        self.breaker_state = Gauge(
            "patron_upstream_breaker_state",
            "Circuit breaker of each upstream host: 0 closed, 1 half-open, 2 open "
            "(several workers: the worst).",
            ["host"],
            multiprocess_mode="livemax",
            registry=registry,
        )

        # --- caches --------------------------------------------------------------------------
        self.cache_lookups = Counter(
            "patron_cache_lookups",
            "Cached upstream reads by cache and result (hit, stale, miss).",
            ["cache", "result"],
            registry=registry,
        )

        # --- the ledger ----------------------------------------------------------------------
        self.ledger_transactions = Counter(
            "patron_ledger_transactions",
            "Ledger transactions committed, by kind.",
            ["kind"],
            registry=registry,
        )
        self.ledger_points = Counter(
            "patron_ledger_points",
            "Points moved by committed ledger transactions (the sum of their postings), by kind.",
            ["kind"],
            registry=registry,
        )

        # --- webhooks and the database -------------------------------------------------------
        self.webhook_deliveries = Counter(
            "patron_webhook_deliveries",
            "Webhook deliveries by endpoint, HTTP status and outcome (the answer's status or "
            "error code).",
            ["endpoint", "status", "outcome"],
            registry=registry,
        )
        self.database_unavailable = Counter(
            "patron_database_unavailable",
            "Requests answered (in part) DATABASE_UNAVAILABLE, by source (graphql, webhook).",
            ["source"],
            registry=registry,
        )

    # --- recording --------------------------------------------------------------------------
    def graphql_request(
        self, operation: str, operation_type: str, outcome: str, seconds: float
    ) -> None:
        self.graphql_requests.labels(operation, operation_type, outcome).inc()
        self.graphql_duration.labels(operation, operation_type).observe(seconds)

    def rate_limit_refused(self, limit: str) -> None:
        """A request refused by the rate limit named `limit` (a fixed name per limit)."""
        self.rate_limit_refusals.labels(limit).inc()

    def upstream_call(self, upstream: str, outcome: str, seconds: float, attempts: int) -> None:
        self.upstream_requests.labels(upstream, outcome).inc()
        self.upstream_duration.labels(upstream).observe(seconds)
        if attempts > 1:
            self.upstream_retries.labels(upstream).inc(attempts - 1)

    def breaker(self, host: str, state: BreakerState) -> None:
        self.breaker_state.labels(host).set(BREAKER_STATE_VALUES[state])

    def cache(self, name: str) -> CacheCounts:
        """The counts of the cache `name` (cms, cdp, orders)."""
        return CacheCounts(self.cache_lookups, name)

    def transactions_posted(self, posted: Sequence[PostedTransaction]) -> None:
        """`loyalty.ports.PostingEvents`: transactions a commit made durable."""
        for transaction in posted:
            kind = transaction.kind.value
            self.ledger_transactions.labels(kind).inc()
            self.ledger_points.labels(kind).inc(transaction.points)

    def webhook_delivery(self, endpoint: str, status: int, outcome: str) -> None:
        self.webhook_deliveries.labels(endpoint, str(status), outcome).inc()

    def database_unavailable_in(self, source: str) -> None:
        self.database_unavailable.labels(source).inc()

    # --- exposition -------------------------------------------------------------------------
    def exposition(self) -> bytes:
        """Every metric in the text format: this process's, or with several workers the
        merged files of all of them."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(merged, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
