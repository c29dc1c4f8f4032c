"""Settings, read once: from the environment (prefix `PATRON_`) or a `.env` file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.http import UpstreamPolicy

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

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.jwt_secret is not None and self.jwks_url is not None:
            raise ValueError("set PATRON_JWT_SECRET or PATRON_JWKS_URL, not both")
        if self.env == "prod" and not self.card_secret.get_secret_value():
            raise ValueError("PATRON_CARD_SECRET is required when PATRON_ENV=prod")
        return self

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"

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
