"""Building the three upstream adapters from the settings and the shared HTTP client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from adapters.cdp.client import SegmentClient
from adapters.cms.client import AmplienceClient
from adapters.commerce.client import CommercetoolsClient
from adapters.http import BreakerState, Upstream
from gateway.settings import Settings, UpstreamName


class ConfigurationError(RuntimeError):
    """The settings cannot run the gateway; the message names the setting."""


@dataclass(frozen=True, slots=True)
class UpstreamClients:
    commerce: CommercetoolsClient
    cms: AmplienceClient
    cdp: SegmentClient

    def breaker_states(self) -> Mapping[str, BreakerState]:
        """The circuit breaker of every host, by `<upstream>` or `<upstream>.<part>`: each
        host has its own breaker (the commerce auth host may fail while its API answers)."""
        hosts: dict[str, Upstream | None] = {
            "commerce": self.commerce.api,
            "commerce.auth": self.commerce.auth,
            "cms": self.cms.upstream,
            "cdp": self.cdp.profiles_upstream,
            "cdp.tracking": self.cdp.tracking_upstream,
            "cdp.regulations": self.cdp.regulations_upstream,
        }
        return {name: host.breaker_state for name, host in hosts.items() if host is not None}


def _required(value: str | None, name: str) -> str:
    if not value:
        raise ConfigurationError(f"PATRON_{name} is required (or run with --demo)")
    return value


def build_upstreams(settings: Settings, http: httpx.AsyncClient) -> UpstreamClients:
    """The three adapters; every host of an upstream has that upstream's policy."""

    def host(name: UpstreamName, url: str) -> Upstream:
        return Upstream(name, url, http, settings.upstream_policy(name))

    commerce = CommercetoolsClient(
        host("commerce", _required(settings.commerce_api_url, "COMMERCE_API_URL")),
        host("commerce", _required(settings.commerce_auth_url, "COMMERCE_AUTH_URL")),
        project_key=settings.commerce_project_key,
        client_id=settings.commerce_client_id,
        client_secret=settings.commerce_client_secret.get_secret_value(),
        scope=settings.commerce_scope,
    )
    cms = AmplienceClient(
        host("cms", _required(settings.cms_url, "CMS_URL")), locale=settings.cms_locale
    )
    regulations = (
        host("cdp", settings.cdp_regulations_url) if settings.cdp_regulations_url else None
    )
    cdp = SegmentClient(
        host("cdp", _required(settings.cdp_profile_url, "CDP_PROFILE_URL")),
        host("cdp", _required(settings.cdp_tracking_url, "CDP_TRACKING_URL")),
        regulations,
        space_id=settings.cdp_space_id,
        access_token=settings.cdp_token.get_secret_value(),
        write_key=settings.cdp_write_key.get_secret_value(),
        concurrency=settings.cdp_concurrency,
    )
    return UpstreamClients(commerce=commerce, cms=cms, cdp=cdp)
