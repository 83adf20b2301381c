"""Periods a report is cut into, in the programme's time zone: a day starts at local midnight, a week on
Monday, a month on its first."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from loyalty_api.errors import InvalidField

# A report names at most this many periods: a year of days, and then some.
MAX_PERIODS = 400


class Period(StrEnum):
    day = "day"
    week = "week"
    month = "month"


def _local_start(at: datetime, period: Period, zone: ZoneInfo) -> datetime:
    """The local start of the period `at` falls in (naive, local wall time), on its first pass: an `at` in the
    second pass of an hour the clocks repeat keeps that pass (`fold`) in its local time, and where the clocks
    go back at midnight (Havana on the first Sunday of November) its day, and a month beginning then, would
    begin at the second midnight, an hour late."""
    local = at.astimezone(zone).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0, fold=0)
    if period is Period.week:
        return local - timedelta(days=local.weekday())
    if period is Period.month:
        return local.replace(day=1)
    return local


def _next(local: datetime, period: Period) -> datetime:
    if period is Period.day:
        return local + timedelta(days=1)
    if period is Period.week:
        return local + timedelta(days=7)
    return local.replace(year=local.year + (local.month == 12), month=local.month % 12 + 1)


def boundaries(start: datetime, end: datetime, period: Period | None, zone: ZoneInfo) -> list[datetime]:
    """The instants that cut [start, end) into periods: `start`, each local period start after it, `end`.
    Without a period, one: [start, end). InvalidField when `end` is not after `start` or the periods are
    too many."""
    if end <= start:
        raise InvalidField("to", "must be after `from`")
    cuts = [start]
    if period is not None:
        local = _next(_local_start(start, period, zone), period)
        while (cut := local.replace(tzinfo=zone).astimezone(start.tzinfo)) < end:
            if len(cuts) >= MAX_PERIODS:
                raise InvalidField("to", f"a report covers at most {MAX_PERIODS} periods")
            cuts.append(cut)
            local = _next(local, period)
    return [*cuts, end]


def period_around(at: datetime, period: Period, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The period `at` falls in, [start, end), its ends local period starts as instants in `at`'s zone."""
    local = _local_start(at, period, zone)
    start = local.replace(tzinfo=zone).astimezone(at.tzinfo)
    return start, _next(local, period).replace(tzinfo=zone).astimezone(at.tzinfo)
