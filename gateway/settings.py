"""Settings, read once: from the environment (prefix `PATRON_`) or a `.env` file."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from adapters.http import UpstreamPolicy
from gateway.cors import normalized_origin
from gateway.jwt_algorithms import HMAC_MIN_SECRET_BYTES, accepted_algorithms

# The project's own programs/ folder, wherever the gateway is started from.
PROGRAMS_DIR = Path(__file__).resolve().parent.parent / "programs"
DEFAULT_PROGRAM = PROGRAMS_DIR / "club-harry.toml"

UpstreamName = Literal["commerce", "cms", "cdp"]


class UpstreamSettings(BaseModel):
    """One upstream's policy (`PATRON_UPSTREAMS__<NAME>__<FIELD>`). A field left unset takes
    the global `PATRON_UPSTREAM_<FIELD>`, so one setting tunes every upstream and a value here
    tunes one. Unknown fields are refused: a misspelt override must not be ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connect_timeout: float | None = Field(default=None, gt=0)
    read_timeout: float | None = Field(default=None, gt=0)
    retries: int | None = Field(default=None, ge=0, le=5)
    backoff_base: float | None = Field(default=None, ge=0)
    backoff_max: float | None = Field(default=None, ge=0)
    max_retry_after: float | None = Field(default=None, ge=0)
    breaker_failures: int | None = Field(default=None, ge=1)
    breaker_reset_after: float | None = Field(default=None, gt=0)

    def policy(self, defaults: UpstreamPolicy) -> UpstreamPolicy:
        """`defaults` with this upstream's own values put in."""
        own = {name: value for name, value in self.model_dump().items() if value is not None}
        return dataclasses.replace(defaults, **own)


class CmsUpstreamSettings(UpstreamSettings):
    """The CMS is a CDN: an edge answers in tens of milliseconds or not at all, and cached
    content is served stale when it does not, so its timeouts are short unless set."""

    connect_timeout: float | None = Field(default=0.5, gt=0)
    read_timeout: float | None = Field(default=1.0, gt=0)


class UpstreamsSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    commerce: UpstreamSettings = UpstreamSettings()
    cms: CmsUpstreamSettings = CmsUpstreamSettings()
    cdp: UpstreamSettings = UpstreamSettings()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PATRON_",
        env_file=".env",
        env_nested_delimiter="__",  # PATRON_UPSTREAMS__CMS__READ_TIMEOUT=1.5
        extra="ignore",
        frozen=True,
    )

    database_url: str = "sqlite+aiosqlite:///./patron.db"
    # Connections each process keeps open (as many again under load). A request holds one
    # only while it reads (`adapters.db.connections`), so this bounds concurrent reads.
    database_pool_size: int = Field(default=20, ge=1, le=200)
    redis_url: str | None = None
    # Seconds a Redis command (a cache read, a publish) may take before it counts as a
    # failure: the cache then answers as a miss.
    redis_timeout: float = Field(default=0.25, gt=0)
    program: Path = DEFAULT_PROGRAM
    env: Literal["dev", "prod"] = "dev"

    jwt_secret: SecretStr | None = None
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    # Comma-separated (`RS256,ES256`); empty: HS256 with a secret, RS256 with a JWKS. One
    # family only: HS* with the secret, RS*/PS*/ES*/EdDSA with the JWKS (see jwt_algorithms).
    jwt_algorithms: Annotated[tuple[str, ...], NoDecode] = ()
    # Seconds of clock skew allowed on exp, nbf and iat.
    jwt_leeway: float = Field(default=30.0, ge=0, le=300)
    # The JWKS: fetched within `jwks_timeout`; fetched again at most once per
    # `jwks_refresh_interval` (an unknown kid, an expired set, a failure); kept for its
    # Cache-Control max-age, bounded to [jwks_refresh_interval, jwks_max_age].
    jwks_timeout: float = Field(default=3.0, gt=0, le=30)
    jwks_refresh_interval: float = Field(default=30.0, ge=1, le=3600)
    jwks_max_age: float = Field(default=3600.0, ge=1, le=86400)

    commerce_api_url: str | None = None
    commerce_auth_url: str | None = None
    commerce_project_key: str = "patron-demo"
    commerce_client_id: str = ""
    commerce_client_secret: SecretStr = SecretStr("")
    commerce_scope: str | None = None

    cms_url: str | None = None
    cms_locale: str = "en-GB"

    cdp_profile_url: str | None = None
    cdp_space_id: str = ""
    cdp_token: SecretStr = SecretStr("")
    cdp_tracking_url: str | None = None
    cdp_write_key: SecretStr = SecretStr("")
    cdp_regulations_url: str | None = None
    cdp_concurrency: int = Field(default=10, ge=1, le=100)

    webhook_secret: SecretStr | None = None
    cdp_webhook_secret: SecretStr | None = None
    cms_webhook_secret: SecretStr | None = None  # Amplience webhooks (`/webhooks/cms`)
    card_secret: SecretStr = SecretStr("")

    # The upstream policy (adapters/http.py): these global values, for each upstream
    # overridden field by field in `upstreams` (PATRON_UPSTREAMS__CMS__READ_TIMEOUT=1.5).
    upstream_connect_timeout: float = Field(default=2.0, gt=0)
    upstream_read_timeout: float = Field(default=5.0, gt=0)
    upstream_retries: int = Field(default=2, ge=0, le=5)
    upstream_backoff_base: float = Field(default=0.05, ge=0)
    upstream_backoff_max: float = Field(default=1.0, ge=0)
    upstream_max_retry_after: float = Field(default=2.0, ge=0)
    upstream_breaker_failures: int = Field(default=5, ge=1)
    upstream_breaker_reset_after: float = Field(default=10.0, gt=0)
    upstreams: UpstreamsSettings = UpstreamsSettings()
    # Seconds of upstream work one GraphQL HTTP request may cause, from its arrival. A
    # storefront page or the till waits about 3 s before giving up; 2.5 s leaves room for a
    # timed-out CMS attempt (1 s), its back-off and a retry, and for the rest of the answer.
    request_deadline: float = Field(default=2.5, gt=0, le=60)

    # Caches of CMS content and CDP profiles (Redis when configured): served without a call
    # for the TTL, then served stale and refreshed in the background up to `cache_stale_ttl`
    # (and when the upstream fails). A TTL of 0 turns that cache off.
    cms_cache_ttl: float = Field(default=300.0, ge=0)
    profile_cache_ttl: float = Field(default=60.0, ge=0)
    cache_stale_ttl: float = Field(default=86400.0, ge=0)
    # A customer's order history: never served past this TTL while commerce answers (only
    # when it fails), and dropped when an order of the customer is recorded or returned.
    orders_cache_ttl: float = Field(default=60.0, ge=0)

    # `Cache-Control: public, max-age=N` on anonymous queries of public fields (`program`).
    public_max_age: int = Field(default=60, ge=0)

    # Browsers on these origins may call the gateway (CORS, and WebSocket handshakes):
    # comma-separated `scheme://host[:port]`. Empty: no CORS headers at all (gateway.cors).
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # Seconds a browser may cache a CORS preflight answer.
    cors_max_age: int = Field(default=600, ge=0, le=86400)

    # Also an Apollo Federation 2 subgraph (`_service`, `_entities`; `Member` an entity keyed
    # by `id` and by `externalIds { commerceCustomerId }`): see gateway/federation.py.
    federation: bool = False

    # The outbox relay (CDP events queued by mutations): off, it leaves the rows queued (a
    # test drains them by hand; another replica may send them).
    outbox_relay: bool = True
    outbox_interval: float = Field(default=2.0, gt=0)

    # `patron jobs run birthdays` also rewards birthdays this many days back (a missed run).
    birthday_window_days: int = Field(default=0, ge=0, le=31)

    # On SIGTERM the server stops accepting connections and lets requests in flight finish
    # for up to this many seconds before it closes them (match the orchestrator's grace).
    shutdown_grace: int = Field(default=30, ge=1)

    demo: bool = False

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [origin for origin in value.split(",") if origin.strip()]
        if isinstance(value, list | tuple):
            try:
                return tuple(dict.fromkeys(normalized_origin(str(origin)) for origin in value))
            except ValueError as exc:
                raise ValueError(f"PATRON_CORS_ORIGINS: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.jwt_secret is not None and self.jwks_url is not None:
            raise ValueError("set PATRON_JWT_SECRET or PATRON_JWKS_URL, not both")
        if self.jwt_algorithms and self.jwt_secret is None and self.jwks_url is None:
            raise ValueError("PATRON_JWT_ALGORITHMS needs PATRON_JWT_SECRET or PATRON_JWKS_URL")
        algorithms = self.jwt_accepted_algorithms  # raises ValueError naming the setting
        if self.jwks_max_age < self.jwks_refresh_interval:
            raise ValueError("PATRON_JWKS_MAX_AGE must be at least PATRON_JWKS_REFRESH_INTERVAL")
        if self.env == "prod" and self.jwt_secret is not None:
            needed = max(HMAC_MIN_SECRET_BYTES[name] for name in algorithms)
            if len(self.jwt_secret_value.encode()) < needed:
                raise ValueError(
                    f"PATRON_JWT_SECRET must be at least {needed} bytes when PATRON_ENV=prod "
                    "(RFC 7518: as long as the HMAC hash)"
                )
        if self.env == "prod" and not self.card_secret.get_secret_value():
            raise ValueError("PATRON_CARD_SECRET is required when PATRON_ENV=prod")
        return self

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"

    @property
    def jwt_accepted_algorithms(self) -> tuple[str, ...]:
        """The algorithms the verifier accepts (and `patron token` signs with the first)."""
        return accepted_algorithms(self.jwt_algorithms, secret=self.jwks_url is None)

    @property
    def jwt_secret_value(self) -> str:
        return self.jwt_secret.get_secret_value() if self.jwt_secret else ""

    @property
    def upstream_defaults(self) -> UpstreamPolicy:
        """The global policy: what an upstream uses where it has no value of its own."""
        return UpstreamPolicy(
            connect_timeout=self.upstream_connect_timeout,
            read_timeout=self.upstream_read_timeout,
            retries=self.upstream_retries,
            backoff_base=self.upstream_backoff_base,
            backoff_max=self.upstream_backoff_max,
            max_retry_after=self.upstream_max_retry_after,
            breaker_failures=self.upstream_breaker_failures,
            breaker_reset_after=self.upstream_breaker_reset_after,
        )

    def upstream_policy(self, upstream: UpstreamName) -> UpstreamPolicy:
        """The policy of one upstream: its own values over the global ones."""
        own: UpstreamSettings = getattr(self.upstreams, upstream)
        return own.policy(self.upstream_defaults)
