"""Settings, read once: from the environment (prefix `PATRON_`) or a `.env` file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from adapters.http import UpstreamPolicy
from gateway.jwt_algorithms import HMAC_MIN_SECRET_BYTES, accepted_algorithms

# The project's own programs/ folder, wherever the gateway is started from.
PROGRAMS_DIR = Path(__file__).resolve().parent.parent / "programs"
DEFAULT_PROGRAM = PROGRAMS_DIR / "club-harry.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PATRON_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = "sqlite+aiosqlite:///./patron.db"
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

    upstream_connect_timeout: float = Field(default=2.0, gt=0)
    upstream_read_timeout: float = Field(default=5.0, gt=0)
    upstream_retries: int = Field(default=2, ge=0, le=5)

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
    def upstream_policy(self) -> UpstreamPolicy:
        return UpstreamPolicy(
            connect_timeout=self.upstream_connect_timeout,
            read_timeout=self.upstream_read_timeout,
            retries=self.upstream_retries,
        )
