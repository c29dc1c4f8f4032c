"""The golden record's insights through the store ports: refresh the materialized segments
(`patron jobs run segments`) and read them, computing live for members the job has not
seen yet. The rules and scores are `loyalty.segments`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from loyalty.segments import Insights, Segment, SegmentRules, activity_window, insights
from loyalty.store import LoyaltyReader, LoyaltyStore


async def refresh_segments(
    store: LoyaltyStore, rules: SegmentRules, now: datetime
) -> Counter[Segment]:
    """Recompute every member's insights as of `now` and store them in one database
    transaction (readers see the old or the new snapshot, never a mix). Two queries and a
    batched upsert whatever the number of members; running it again at the same moment
    writes the same rows. Returns the number of members per segment."""
    since, until = activity_window(now)
    activity = await store.reader.segment_activity(None, since, until)
    rows = [insights(m, activity[m], now, rules) for m in sorted(activity)]
    async with store.session() as session:
        await session.save_insights(rows)
    return Counter(r.segment for r in rows)


async def insights_of(
    reader: LoyaltyReader, member_ids: Sequence[str], rules: SegmentRules, now: datetime
) -> dict[str, Insights]:
    """The members' insights: the materialized ones, and, for members the job has not seen
    yet, computed live from the same features (one more query for all of them)."""
    found = await reader.member_insights(member_ids)
    missing = [m for m in member_ids if m not in found]
    if missing:
        since, until = activity_window(now)
        activity = await reader.segment_activity(missing, since, until)
        found |= {m: insights(m, a, now, rules) for m, a in activity.items()}
    return found
