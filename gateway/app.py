"""The application factory: `create_app(settings)` builds the Starlette app; the lifespan
opens (and closes) the long-lived clients: the database engine, Redis, one httpx client."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from opentelemetry.sdk.trace import SpanProcessor
from prometheus_client.multiprocess import mark_process_dead
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route, WebSocketRoute

from adapters.cache.cached_orders import CachedOrders
from adapters.cache.cached_ports import CachedContent, CachedProfiles
from adapters.cache.pubsub import BalanceNotifier, InProcessBroker, RedisBroker
from adapters.cache.store import CacheStore, MemoryCacheStore, RedisCacheStore
from adapters.cache.swr import CacheObserver
from adapters.db.engine import create_engine
from adapters.db.migrate import upgrade_engine
from adapters.db.outbox import OutboxRelay
from adapters.db.privacy import SqlPrivacyStore
from adapters.db.store import SqlLoyaltyStore
from adapters.rate_limit.gcra import RateLimiter
from adapters.rate_limit.memory import MemoryRateLimiter
from adapters.rate_limit.redis import RedisRateLimiter
from gateway import gc_tuning
from gateway.auth import AuthError, Identity, TokenVerifier
from gateway.cdp_webhook import cdp_webhook
from gateway.cms_webhook import cms_webhook
from gateway.cors import cors_middleware
from gateway.demo import Fakes, seed_database, seed_fakes
from gateway.endpoint import GraphQLEndpoint
from gateway.failures import DatabaseOutages, server_error
from gateway.graphiql import STATIC_PREFIX, static_app
from gateway.graphql_view import PatronGraphQL
from gateway.health import healthz, readyz
from gateway.jwks import JwksCache
from gateway.metrics import Metrics
from gateway.metrics_endpoint import MetricsAccess, metrics_access, metrics_endpoint
from gateway.observed_requests import ObservedRequests
from gateway.observed_webhooks import counted
from gateway.rate_limit import RateLimit
from gateway.request_id import RequestIds
from gateway.request_size import RequestSize
from gateway.schema import build_schema
from gateway.settings import Settings
from gateway.sql_tracing import trace_statements
from gateway.tracing import Tracing
from gateway.trusted_documents.manifest import ManifestError, load_manifest
from gateway.trusted_documents.persisted import MAX_IN_PROCESS, PersistedQueries
from gateway.trusted_documents.policy import TrustPolicy
from gateway.trusted_documents.resolution import TrustedDocuments
from gateway.upstream_telemetry import GatewayUpstreamTelemetry
from gateway.upstreams import ConfigurationError, UpstreamClients, build_upstreams
from gateway.webhooks import commerce_webhook
from loyalty.households import HouseholdService
from loyalty.ledger import LedgerService
from loyalty.members import MemberService
from loyalty.ports import Broker
from loyalty.privacy import PrivacyService
from loyalty.program import Program, load_program
from loyalty.tier_service import TierService
from resolvers.context import Services

log = logging.getLogger("patron")

Clock = Callable[[], datetime]

POST = ["POST"]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Gateway:
    """What the lifespan made: shared by every request of this process."""

    settings: Settings
    services: Services
    verifier: TokenVerifier | None
    engine: AsyncEngine
    redis: Redis | None
    http: httpx.AsyncClient
    outbox: OutboxRelay  # sends queued CDP events; in the background if settings.outbox_relay
    upstreams: UpstreamClients  # the adapters under their caches; `breaker_states()`
    rate_limit: RateLimit  # per identity, on /graphql (gateway.rate_limit)
    request_size: RequestSize  # of a /graphql request (gateway.request_size)
    documents: TrustedDocuments  # documents by hash, APQ (gateway.trusted_documents)

    async def authenticate(self, authorization: str | None) -> Identity:
        """The caller behind an Authorization value: anonymous when there is none (or it is
        blank, as clients send when logged out); AuthError for anything but a good bearer."""
        if not authorization or not authorization.strip():
            return Identity.anonymous()
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("the Authorization header must be 'Bearer <token>'")
        if self.verifier is None:
            raise AuthError("this gateway has no token verification configured")
        return await self.verifier.verify(token.strip())


def create_app(
    settings: Settings,
    *,
    http: httpx.AsyncClient | None = None,
    fakes: Fakes | None = None,
    clock: Clock = utc_now,
    span_processor: SpanProcessor | None = None,
    tune_gc: bool = False,
) -> Starlette:
    """Build the gateway. `http` replaces the shared HTTP client (tests route it to fakes);
    in demo mode the fakes run in process unless given. `span_processor` turns tracing on
    with it instead of the OTLP exporter (tests read their spans from it). `tune_gc`:
    freeze the heap once started (`gateway.gc_tuning`; `patron serve` only)."""
    program = load_program(settings.program)  # an invalid program stops the start here
    metrics = Metrics(multiprocess_dir=settings.prometheus_multiproc_dir)
    tracing = Tracing.from_settings(settings, span_processor)
    if settings.demo and fakes is None and http is None:
        fakes = Fakes()
        seed_fakes(fakes, clock())
    trust = _trust_policy(settings)  # an unreadable manifest stops the start here
    schema = build_schema(
        production=not settings.is_dev,
        public_max_age=settings.public_max_age,
        federation=settings.federation,
        limits=settings.operation_limits,
        trust=trust,
    )
    graphql = PatronGraphQL(
        schema,
        graphql_ide="graphiql" if settings.is_dev else None,
        allowed_origins=settings.cors_origins,  # WebSocket handshakes from those origins
        mask_errors=not settings.is_dev,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tracing.start()
        engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
        if tracing.tracer is not None:
            trace_statements(engine, tracing.tracer)
        redis, listener = _redis_clients(settings)
        broker: Broker = RedisBroker(redis, listener) if redis and listener else InProcessBroker()
        relay_task: asyncio.Task[None] | None = None
        if http is not None:
            client = http
        elif fakes is not None:
            client = fakes.http_client()
        else:
            client = httpx.AsyncClient(
                timeout=httpx.Timeout(settings.upstream_read_timeout),
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            )
        try:
            notifier = BalanceNotifier(broker)
            telemetry = GatewayUpstreamTelemetry(metrics, tracing.tracer)
            upstreams = build_upstreams(settings, client, telemetry)
            for host, upstream in upstreams.hosts().items():
                metrics.breaker(host, upstream.breaker_state)
                upstream.breaker.on_change = functools.partial(metrics.breaker, host)
            services = _services(
                settings, program, engine, upstreams, clock, broker, notifier,
                redis=redis, metrics=metrics,
            )  # fmt: skip
            relay = OutboxRelay(
                engine, services.cdp, interval=settings.outbox_interval, clock=clock
            )
            if settings.demo:
                await upgrade_engine(engine)
                await seed_database(services, engine)
            app.state.gateway = Gateway(
                settings,
                services,
                _verifier(settings, client),
                engine,
                redis,
                client,
                relay,
                upstreams,
                rate_limit=RateLimit(settings.rate_limit_policy, _rate_limiter(redis, clock)),
                request_size=settings.request_size,
                documents=TrustedDocuments(trust, _persisted_queries(settings, redis)),
            )
            if settings.outbox_relay:
                notifier.after.append(relay.nudge)  # a commit that moved points queued events
                relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
            if tune_gc:
                gc_tuning.tune()
            yield
        finally:
            if relay_task is not None:
                relay_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relay_task
            await broker.close()
            if http is None:
                await client.aclose()
            for client_ in (redis, listener):
                if client_ is not None:
                    await client_.aclose()
            await engine.dispose()
            tracing.shutdown()  # the spans not yet exported
            if settings.prometheus_multiproc_dir:  # this worker's breaker gauges go
                mark_process_dead(os.getpid(), settings.prometheus_multiproc_dir)  # type: ignore[no-untyped-call]

    endpoint = GraphQLEndpoint(graphql)
    routes: list[Route | WebSocketRoute | Mount] = [
        Route("/graphql", endpoint),  # every method: the view answers 405 as GraphQL does
        WebSocketRoute("/graphql", endpoint),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/webhooks/commerce", counted("commerce", commerce_webhook, metrics), methods=POST),
        Route("/webhooks/cdp", counted("cdp", cdp_webhook, metrics), methods=POST),
        Route("/webhooks/cms", counted("cms", cms_webhook, metrics), methods=POST),
    ]
    if metrics_access(settings) is not MetricsAccess.OFF:
        routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
    if settings.is_dev:
        routes.append(Mount(STATIC_PREFIX, app=static_app(), name="graphiql-static"))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(RequestIds),
            Middleware(ObservedRequests, metrics=metrics, tracing=tracing),
            *cors_middleware(settings.cors_origins, settings.cors_max_age),
            Middleware(DatabaseOutages),
        ],
        exception_handlers={Exception: server_error},
    )
    app.state.settings = settings
    app.state.fakes = fakes
    app.state.metrics = metrics
    app.state.tracing = tracing
    return app


def _redis_clients(settings: Settings) -> tuple[Redis | None, Redis | None]:
    """Two clients of `PATRON_REDIS_URL`: one for commands (the cache, publishing, the
    readiness check), bounded by `PATRON_REDIS_TIMEOUT` so that a Redis that hangs costs a
    request that long and no more; one for the subscriptions' long waits, with a connect
    timeout only."""
    if not settings.redis_url:
        return None, None
    timeout = settings.redis_timeout
    commands = Redis.from_url(
        settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    listener = Redis.from_url(settings.redis_url, socket_connect_timeout=timeout)
    return commands, listener


def _trust_policy(settings: Settings) -> TrustPolicy:
    """The manifest of trusted documents, checked. Without one, documents are found by hash
    only in the APQ store, unless trusted documents only is set: that needs it."""
    path = settings.trusted_documents
    if not path.exists() and not settings.trusted_documents_only:
        log.warning("no trusted documents manifest at %s (PATRON_TRUSTED_DOCUMENTS)", path)
        return TrustPolicy()
    try:
        manifest = load_manifest(path)
    except ManifestError as exc:
        raise ConfigurationError(f"PATRON_TRUSTED_DOCUMENTS: {exc}") from exc
    return TrustPolicy(manifest, settings.trusted_documents_only)


def _persisted_queries(settings: Settings, redis: Redis | None) -> PersistedQueries | None:
    """The APQ store: Redis (shared by the replicas) or in process; None when off."""
    if settings.apq_ttl <= 0:
        return None
    store: CacheStore = (
        RedisCacheStore(redis, prefix="patron:")
        if redis is not None
        else MemoryCacheStore(max_entries=MAX_IN_PROCESS)
    )
    return PersistedQueries(store, settings.apq_ttl)


def _rate_limiter(redis: Redis | None, clock: Clock) -> RateLimiter:
    """Shared by the replicas through Redis when configured, else in this process; on the
    app's clock (tests move it)."""

    def seconds() -> float:
        return clock().timestamp()

    return RedisRateLimiter(redis, seconds) if redis is not None else MemoryRateLimiter(seconds)


def _services(
    settings: Settings,
    program: Program,
    engine: AsyncEngine,
    upstreams: UpstreamClients,
    clock: Clock,
    broker: Broker,
    notifier: BalanceNotifier,
    *,
    redis: Redis | None = None,
    metrics: Metrics | None = None,
) -> Services:
    store = SqlLoyaltyStore(engine, postings=metrics)
    cache: CacheStore = RedisCacheStore(redis) if redis is not None else MemoryCacheStore()
    stale = settings.cache_stale_ttl

    def counts(name: str) -> CacheObserver | None:
        return metrics.cache(name) if metrics is not None else None

    cms = CachedContent(upstreams.cms, cache, settings.cms_cache_ttl, stale, observer=counts("cms"))
    cdp = CachedProfiles(
        upstreams.cdp, cache, settings.profile_cache_ttl, stale, observer=counts("cdp")
    )
    commerce = CachedOrders(
        upstreams.commerce, cache, settings.orders_cache_ttl, stale, observer=counts("orders")
    )
    ledger = LedgerService(store, program, clock, events=notifier, order_history=commerce)
    return Services(
        program=program,
        store=store,
        commerce=commerce,
        cms=cms,
        cdp=cdp,
        members=MemberService(store, clock),
        ledger=ledger,
        households=HouseholdService(store, program, clock, ledger, events=notifier),
        tiers=TierService(store, program, clock),
        card_secret=settings.card_secret.get_secret_value() or settings.jwt_secret_value,
        clock=clock,
        broker=broker,
        privacy=PrivacyService(
            SqlPrivacyStore(engine), cdp, program, clock, order_history=commerce
        ),
    )


def _verifier(settings: Settings, http: httpx.AsyncClient) -> TokenVerifier | None:
    if settings.jwt_secret is None and settings.jwks_url is None:
        log.warning("no PATRON_JWT_SECRET or PATRON_JWKS_URL: every caller is anonymous")
        return None
    jwks = (
        JwksCache(
            settings.jwks_url,
            http,
            timeout=settings.jwks_timeout,
            refresh_interval=settings.jwks_refresh_interval,
            max_age=settings.jwks_max_age,
        )
        if settings.jwks_url is not None
        else None
    )
    return TokenVerifier(
        algorithms=settings.jwt_accepted_algorithms,
        secret=settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
        jwks=jwks,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway=settings.jwt_leeway,
    )
