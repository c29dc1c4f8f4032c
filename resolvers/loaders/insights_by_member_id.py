from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiodataloader import DataLoader

from loyalty.insights import insights_of
from loyalty.program import Program
from loyalty.segments import Insights, SegmentRules
from loyalty.store import LoyaltyReader


class InsightsByMemberIdLoader(DataLoader[str, Insights | None]):
    """RFM segment, engagement and churn risk: one query on the materialized segments, and
    one more for the members the segments job has not seen yet (computed live)."""

    def __init__(
        self, reader: LoyaltyReader, program: Program, clock: Callable[[], datetime]
    ) -> None:
        super().__init__()
        self.reader = reader
        self.rules = SegmentRules.for_program(program)
        self.clock = clock

    async def batch_load_fn(self, keys: list[str]) -> list[Insights | None]:
        found = await insights_of(self.reader, keys, self.rules, self.clock())
        return [found.get(k) for k in keys]
