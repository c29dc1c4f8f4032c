"""`patron jobs run NAME`: the scheduled jobs, each idempotent and safe to run from cron
on any replica.

- `pending`: move earns whose return window has passed from pending to available (reads
  already show them as available; the job makes the ledger say so too);
- `expiry`: expire posted points older than the program's `expiry_months`, oldest first.
- `segments`: recompute every member's RFM segment, engagement and churn risk
  (`loyalty.segments`) into `member_segments`, in one transaction.
- `birthdays`: birthday rewards (an offer with a code and bonus points) for the members
  whose CDP `birthday` trait falls today in the program's time zone, or up to
  `PATRON_BIRTHDAY_WINDOW_DAYS` days back; once per member and year. A CDP failure stops it
  with `JobFailed` (exit status 1); what it granted stays granted, the next run does the rest.
- `tiers`: the end-of-period tier review (`loyalty.tier_service`): each member whose held
  tier's period has ended requalifies or drops one tier (never below what its spend earns).
- `cdp-deletions`: send the CDP deletion requests that `forgetMember` queued while the CDP
  was down (`loyalty.privacy`); any still failing stop it with `JobFailed` and stay queued.
- `invitations`: delete the household invitations that expired unanswered (reads and
  `accept` already ignore them; the job keeps no more than the pending ones).

The services are the app's own: the command runs `create_app(settings)`'s lifespan.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from gateway.app import Clock, Gateway, create_app, utc_now
from gateway.cdp_webhook import offer_service
from gateway.settings import Settings
from loyalty.insights import refresh_segments
from loyalty.segments import Segment, SegmentRules


async def _pending(gateway: Gateway) -> str:
    matured = await gateway.services.ledger.mature_pending()
    return f"{matured} earns moved from pending to available"


async def _expiry(gateway: Gateway) -> str:
    expired = await gateway.services.ledger.expire()
    return f"{expired} {gateway.services.program.points_name} expired"


async def _segments(gateway: Gateway) -> str:
    services = gateway.services
    rules = SegmentRules.for_program(services.program)
    counts = await refresh_segments(services.store, rules, services.clock())
    by_segment = ", ".join(f"{s.value.lower()} {counts[s]}" for s in Segment)
    return f"{counts.total()} members segmented: {by_segment}"


class JobFailed(Exception):
    """A job stopped early; the message reports what it did and why it stopped."""


async def _birthdays(gateway: Gateway) -> str:
    window = gateway.settings.birthday_window_days
    report = await offer_service(gateway.services).grant_birthdays(window_days=window)
    if report.error is not None:
        raise JobFailed(report.summary())
    return report.summary()


async def _tiers(gateway: Gateway) -> str:
    review = await gateway.services.tiers.review()
    return review.describe()


async def _invitations(gateway: Gateway) -> str:
    purged = await gateway.services.households.purge_expired_invitations()
    return f"{purged} expired household invitations deleted"


async def _cdp_deletions(gateway: Gateway) -> str:
    sent, queued = await gateway.services.privacy.deliver_deletions()
    summary = f"{sent} CDP deletion requests sent, {queued} still queued"
    if queued:
        raise JobFailed(summary)
    return summary


JOBS: dict[str, Callable[[Gateway], Awaitable[str]]] = {
    "pending": _pending,
    "expiry": _expiry,
    "segments": _segments,
    "birthdays": _birthdays,
    "tiers": _tiers,
    "cdp-deletions": _cdp_deletions,
    "invitations": _invitations,
}


async def run_job(
    settings: Settings, name: str, *, http: httpx.AsyncClient | None = None, clock: Clock = utc_now
) -> str:
    job = JOBS[name]
    app = create_app(settings, http=http, clock=clock)
    async with app.router.lifespan_context(app):
        return await job(app.state.gateway)
