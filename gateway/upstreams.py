"""Building the three upstream adapters from the settings and the shared HTTP client."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from adapters.cdp.client import SegmentClient
from adapters.cms.client import AmplienceClient
from adapters.commerce.client import CommercetoolsClient
from adapters.http import Upstream
from gateway.settings import Settings


class ConfigurationError(RuntimeError):
    """The settings cannot run the gateway; the message names the setting."""


@dataclass(frozen=True, slots=True)
class UpstreamClients:
    commerce: CommercetoolsClient
    cms: AmplienceClient
    cdp: SegmentClient


def _required(value: str | None, name: str) -> str:
    if not value:
        raise ConfigurationError(f"PATRON_{name} is required (or run with --demo)")
    return value


def build_upstreams(settings: Settings, http: httpx.AsyncClient) -> UpstreamClients:
    policy = settings.upstream_policy
    commerce = CommercetoolsClient(
        Upstream(
            "commerce", _required(settings.commerce_api_url, "COMMERCE_API_URL"), http, policy
        ),
        Upstream(
            "commerce", _required(settings.commerce_auth_url, "COMMERCE_AUTH_URL"), http, policy
        ),
        project_key=settings.commerce_project_key,
        client_id=settings.commerce_client_id,
        client_secret=settings.commerce_client_secret.get_secret_value(),
        scope=settings.commerce_scope,
    )
    cms = AmplienceClient(
        Upstream("cms", _required(settings.cms_url, "CMS_URL"), http, policy),
        locale=settings.cms_locale,
    )
    regulations = (
        Upstream("cdp", settings.cdp_regulations_url, http, policy)
        if settings.cdp_regulations_url
        else None
    )
    cdp = SegmentClient(
        Upstream("cdp", _required(settings.cdp_profile_url, "CDP_PROFILE_URL"), http, policy),
        Upstream("cdp", _required(settings.cdp_tracking_url, "CDP_TRACKING_URL"), http, policy),
        regulations,
        space_id=settings.cdp_space_id,
        access_token=settings.cdp_token.get_secret_value(),
        write_key=settings.cdp_write_key.get_secret_value(),
        concurrency=settings.cdp_concurrency,
    )
    return UpstreamClients(commerce=commerce, cms=cms, cdp=cdp)
