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
from typing import Any

import httpx
from opentelemetry.sdk.trace import SpanProcessor
from prometheus_client.multiprocess import mark_process_dead
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.cache.cached_orders import CachedOrders
from adapters.cache.cached_ports import CachedContent, CachedProfiles
from adapters.cache.pubsub import BalanceNotifier, InProcessBroker, RedisBroker
from adapters.cache.store import CacheStore, MemoryCacheStore, RedisCacheStore
from adapters.cache.swr import CacheObserver
from adapters.db.engine import create_engine
from adapters.db.migrate import upgrade_engine
from adapters.db.outages import is_outage
from adapters.db.outbox import OutboxRelay
from adapters.db.privacy import SqlPrivacyStore
from adapters.db.store import SqlLoyaltyStore
from adapters.http import deadline as upstream_deadline
from adapters.rate_limit.gcra import RateLimiter
from adapters.rate_limit.memory import MemoryRateLimiter
from adapters.rate_limit.redis import RedisRateLimiter
from gateway import gc_tuning
from gateway.auth import AuthError, Identity, TokenVerifier
from gateway.cache_control import no_store_by_default
from gateway.cdp_webhook import cdp_webhook
from gateway.cms_webhook import cms_webhook
from gateway.cors import cors_middleware
from gateway.demo import Fakes, seed_database, seed_fakes
from gateway.graphiql import STATIC_PREFIX, static_app
from gateway.graphql_view import PatronGraphQL
from gateway.jwks import JwksCache
from gateway.metrics import Metrics
from gateway.metrics_endpoint import MetricsAccess, metrics_access, metrics_endpoint
from gateway.observed_requests import ObservedRequests
from gateway.observed_webhooks import counted
from gateway.rate_limit import RateLimit
from gateway.request_id import REQUEST_ID_HEADER, RequestIds
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
from gateway.ws_expiry import ConnectionDeadline
from loyalty.access import Viewer
from loyalty.errors import StoreUnavailable
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

READINESS_TIMEOUT = 2.0  # seconds for each dependency check of /readyz
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


class GraphQLEndpoint:
    """Authenticates the bearer token, then hands the request to strawberry. A token that
    cannot be trusted is a 401 with a GraphQL error body, before any execution. Every HTTP
    answer is `Cache-Control: private, no-store` unless it is a public one. A WebSocket
    connection gets a deadline: it is closed (4401) when its token expires.

    An HTTP request runs under the upstream deadline (`PATRON_REQUEST_DEADLINE`, from its
    arrival): all the upstream work it causes fits in it, so a slow upstream costs its own
    fields, not the answer. A WebSocket does not: its subscriptions live for hours.
    """

    def __init__(self, graphql: PatronGraphQL) -> None:
        self.graphql = graphql

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._serve(scope, receive, send)
            return
        send = no_store_by_default(send)  # public answers say so (gateway.cache_control)
        gateway: Gateway = scope["app"].state.gateway
        with upstream_deadline(gateway.settings.request_deadline):
            await self._serve(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway: Gateway = scope["app"].state.gateway
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        try:
            identity = await gateway.authenticate(authorization)
        except AuthError as exc:
            if scope["type"] == "websocket":
                # Before the upgrade is accepted: the client sees an HTTP 403.
                await send({"type": "websocket.close", "code": 4401, "reason": "Unauthorized"})
                return
            # A refused token counts against its address's quota.
            refusal = await gateway.rate_limit.refusal(scope, None)
            await (refusal or unauthorized(str(exc)))(scope, receive, send)
            return
        scope.setdefault("state", {})["viewer"] = identity.viewer
        if scope["type"] != "websocket":
            refused, receive = await admit(gateway, scope, receive, identity.viewer)
            if refused is not None:
                await refused(scope, receive, send)
                return
            await self.graphql(scope, receive, send)
            return
        deadline = ConnectionDeadline(receive, send)
        deadline.attach(scope)
        deadline.arm(identity.valid_until)
        try:
            await self.graphql(scope, deadline.receive, deadline.send)
        finally:
            deadline.close()


async def admit(
    gateway: Gateway, scope: Scope, receive: Receive, viewer: Viewer
) -> tuple[Response | None, Receive]:
    """An HTTP request's admission: within its caller's rate limit, then within the size
    limits (read no further than them). The refusal, or None and the `receive` to go on with
    (the body already read)."""
    refused = await gateway.rate_limit.refusal(scope, viewer)
    if refused is not None:
        return refused, receive
    return await gateway.request_size.bound(scope, receive)


def unauthorized(reason: str) -> JSONResponse:
    """The refusal of an untrustworthy token (RFC 6750 section 3): 401, a Bearer challenge
    whose `error_description` says why, and the same reason as a GraphQL error."""
    # A quoted-string holds printable ASCII but no quote or backslash (the reasons are fixed
    # texts; this keeps a future one from breaking the header).
    description = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in reason)
    return JSONResponse(
        {"errors": [{"message": reason, "extensions": {"code": "UNAUTHENTICATED"}}]},
        status_code=401,
        headers={
            "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'
        },
    )


class DatabaseOutages:
    """ASGI middleware: a route outside GraphQL (a webhook) that met a lost database answers
    503 `DATABASE_UNAVAILABLE` with `Retry-After`: nothing was recorded, the sender should
    retry. (GraphQL reports the same code per field, in its own errors.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if scope["type"] != "http" or started or not is_outage_or_unavailable(exc):
                raise
            # The exception's class only: a driver's message may quote a statement's values.
            log.warning(
                "%s %s: database unavailable (%s)",
                scope["method"], scope["path"], type(exc).__name__,
            )  # fmt: skip
            response = JSONResponse(
                {"error": {"code": StoreUnavailable.code, "message": str(StoreUnavailable())}},
                status_code=503,
                headers={"Retry-After": "30"},
            )
            await response(scope, receive, send)


def is_outage_or_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, StoreUnavailable) or is_outage(exc)


async def server_error(request: Request, exc: Exception) -> JSONResponse:
    """Any other failure: a 500 with a JSON body, the request id and no traceback (the
    traceback goes to the log, with the same request id). On `/graphql` the body is a
    GraphQL response."""
    request_id = request.scope.get("state", {}).get("request_id")
    headers = {REQUEST_ID_HEADER: request_id} if request_id else None
    error: dict[str, Any] = {"code": "INTERNAL_ERROR", "message": "internal error"}
    if request_id:
        error["requestId"] = request_id
    if request.url.path == "/graphql":
        code, message = error.pop("code"), error.pop("message")
        body: dict[str, Any] = {
            "errors": [{"message": message, "extensions": {"code": code, **error}}]
        }
    else:
        body = {"error": error}
    return JSONResponse(body, status_code=500, headers=headers)


async def healthz(request: Request) -> JSONResponse:
    """The process is alive."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers (503 otherwise: loyalty data cannot be served).
    Redis down is `degraded` but still ready: the gateway serves without its cache and
    without cross-replica live updates, and recovers when Redis returns."""
    gateway: Gateway = request.app.state.gateway
    checks: dict[str, Any] = {}
    try:
        async with asyncio.timeout(READINESS_TIMEOUT):
            async with gateway.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    if gateway.redis is None:
        checks["redis"] = "not configured"
    else:
        try:
            async with asyncio.timeout(READINESS_TIMEOUT):
                await gateway.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unavailable: {type(exc).__name__}"
    if checks["database"] != "ok":
        return JSONResponse({"status": "unavailable", **checks}, status_code=503)
    degraded = checks["redis"] not in ("ok", "not configured")
    return JSONResponse({"status": "degraded" if degraded else "ready", **checks})
