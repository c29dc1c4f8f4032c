"""`GET /metrics`: the Prometheus text exposition, and who may read it.

The metrics are internals (upstream hosts, error rates, operation names), not for the
internet. Operators scrape from inside their network; the gateway cannot tell where a
request comes from behind a load balancer, so the rule is a secret, not an address:

- `PATRON_METRICS_TOKEN` set: `/metrics` answers only `Authorization: Bearer <token>`
  (compared in constant time); otherwise 401 with a Bearer challenge. Prometheus sends it
  with `authorization: {credentials_file: ...}` in its scrape config.
- unset, `PATRON_ENV=dev`: open (the demo, docker compose, a developer's Prometheus).
- unset, `PATRON_ENV=prod`: not served at all (404, as any unknown path): production
  exposes nothing until an operator chooses a token.

A separate port was not chosen: with `--workers N` every worker would have to bind it
(`SO_REUSEPORT`), and an orchestrator that routes only `/graphql` and `/webhooks/*` to the
internet gets the same protection from the token.
"""

from __future__ import annotations

import enum
import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.metrics import CONTENT_TYPE, Metrics
from gateway.settings import Settings
from gateway.upstreams import UpstreamClients

__all__ = ["MetricsAccess", "metrics_access", "metrics_endpoint"]


class MetricsAccess(enum.Enum):
    OPEN = "open"
    TOKEN = "token"
    OFF = "off"


def metrics_access(settings: Settings) -> MetricsAccess:
    if settings.metrics_token is not None and settings.metrics_token.get_secret_value():
        return MetricsAccess.TOKEN
    return MetricsAccess.OPEN if settings.is_dev else MetricsAccess.OFF


async def metrics_endpoint(request: Request) -> Response:
    """Mounted by `create_app` unless the access is `OFF`."""
    settings: Settings = request.app.state.settings
    token = settings.metrics_token
    secret = token.get_secret_value() if token is not None else ""
    if secret and not _bearer_matches(request.headers.get("authorization"), secret):
        return JSONResponse(
            {"error": {"code": "UNAUTHENTICATED", "message": "a metrics token is required"}},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    metrics: Metrics = request.app.state.metrics
    upstreams: UpstreamClients = request.app.state.gateway.upstreams
    for host, state in upstreams.breaker_states().items():
        metrics.breaker(host, state)  # open turns half-open by the clock alone
    return Response(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})


def _bearer_matches(authorization: str | None, token: str) -> bool:
    scheme, _, given = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
