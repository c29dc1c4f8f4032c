"""The per-identity rate limit of `/graphql` (README, Rate limits).

Who: a caller with a token is its `sub` within its class (`member:cust-1`, `staff:assoc-1`,
`service:pos-1`); anyone else, and a request whose token is refused, is its client address
(`anonymous:203.0.113.9`): the address uvicorn gives, which is the proxy's
`X-Forwarded-For` only from the proxies it trusts (`--forwarded-allow-ips`).

How many: each class has its quota per `PATRON_RATE_LIMIT_PERIOD` (60 s), a token bucket
(`adapters.rate_limit.gcra`) that allows a burst of the whole quota from idle. A token with
several roles counts in its highest class: service, then staff (associate, marketer,
admin), then member. A quota of 0 turns the limit off for that class.

Over it: 429 with `Retry-After` (whole seconds) and a GraphQL error `RATE_LIMITED`, before
anything else is read or run. The limiter is Redis when configured (shared by the
replicas), else in process; a Redis failure lets requests through (fail open).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import Scope

from adapters.rate_limit.gcra import Quota, RateLimiter
from gateway.refusals import graphql_refusal
from loyalty.access import Role, Viewer

__all__ = ["RATE_LIMITED", "RateClass", "RateLimit", "RateLimitPolicy", "rate_class"]

RATE_LIMITED = "RATE_LIMITED"


class RateClass(enum.StrEnum):
    ANONYMOUS = "anonymous"
    MEMBER = "member"
    STAFF = "staff"
    SERVICE = "service"


def rate_class(viewer: Viewer | None) -> RateClass:
    if viewer is None or not viewer.is_authenticated:
        return RateClass.ANONYMOUS
    if Role.SERVICE in viewer.roles:
        return RateClass.SERVICE
    if viewer.is_staff:
        return RateClass.STAFF
    return RateClass.MEMBER


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """Requests per `period` seconds for each class; 0: not limited."""

    period: float = 60.0
    anonymous: int = 60
    member: int = 300
    staff: int = 600
    service: int = 6000

    def quota(self, rate: RateClass) -> Quota | None:
        limit: int = getattr(self, rate.value)
        return Quota(limit, self.period) if limit > 0 else None


@dataclass(frozen=True, slots=True)
class RateLimit:
    policy: RateLimitPolicy
    limiter: RateLimiter

    async def refusal(self, scope: Scope, viewer: Viewer | None) -> Response | None:
        """429 when the caller is over its quota (it takes one request), else None.
        `viewer`: None when its token was refused (it counts as its address)."""
        rate = rate_class(viewer)
        quota = self.policy.quota(rate)
        if quota is None:
            return None
        who = viewer.sub if viewer is not None and rate is not RateClass.ANONYMOUS else None
        decision = await self.limiter.acquire(f"{rate}:{who or client_host(scope)}", quota)
        if decision.allowed:
            return None
        return too_many_requests(decision.retry_after)


def client_host(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def too_many_requests(retry_after: float) -> Response:
    seconds = max(1, math.ceil(retry_after))
    return graphql_refusal(
        429,
        RATE_LIMITED,
        f"too many requests: retry after {seconds} s",
        headers={"Retry-After": str(seconds)},
        retryAfter=seconds,
    )
