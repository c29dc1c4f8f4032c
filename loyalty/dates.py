"""Calendar arithmetic the rules need."""

from __future__ import annotations

from calendar import monthrange
from datetime import datetime


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` later (or earlier, when negative), clamped to the
    last day of a shorter month: 31 March + 1 month is 30 April."""
    year, month = divmod(moment.month - 1 + months, 12)
    target_year, target_month = moment.year + year, month + 1
    day = min(moment.day, monthrange(target_year, target_month)[1])
    return moment.replace(year=target_year, month=target_month, day=day)
