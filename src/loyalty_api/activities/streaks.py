"""Pure activity arithmetic: the cap periods, in programme days, and consecutive-day streaks with their
bonuses. No I/O, no clock: the caller passes the programme day (loyalty_api.program's zone decides it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


class CapPeriod(StrEnum):
    week = "week"  # Monday to Sunday
    month = "month"
    year = "year"
    lifetime = "lifetime"  # never resets


def period_start(day: date, period: CapPeriod) -> date | None:
    """The first programme day of the period `day` falls in (None: a lifetime has no start)."""
    if period is CapPeriod.week:
        return day - timedelta(days=day.weekday())
    if period is CapPeriod.month:
        return day.replace(day=1)
    if period is CapPeriod.year:
        return day.replace(month=1, day=1)
    return None


def next_period_start(day: date, period: CapPeriod) -> date | None:
    """The first programme day of the period after the one `day` falls in (None: a lifetime never ends)."""
    start = period_start(day, period)
    if start is None:
        return None
    if period is CapPeriod.week:
        return start + timedelta(days=7)
    if period is CapPeriod.month:
        return start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
    return start.replace(year=start.year + 1)


@dataclass(frozen=True, slots=True)
class StreakBonus:
    days: int  # every `days`-th consecutive day earns `points` more
    points: int


@dataclass(frozen=True, slots=True)
class Streak:
    days: int  # consecutive programme days with this activity, today included
    first_today: bool  # the first rewarded activity of its type today: only that one may complete a streak


def streak_on(today: date, last_day: date | None, last_streak: int) -> Streak:
    """The streak an activity today makes, given the member's latest earlier-or-same-day activity of its type
    (`last_day`, with the streak it had): the same day keeps it, yesterday adds one, anything older starts
    over."""
    if last_day == today:
        return Streak(days=last_streak, first_today=False)
    if last_day is not None and last_day == today - timedelta(days=1):
        return Streak(days=last_streak + 1, first_today=True)
    return Streak(days=1, first_today=True)


def bonus_for(streak: Streak, bonuses: Sequence[StreakBonus]) -> list[StreakBonus]:
    """The bonuses the streak completes: each whose `days` divides the streak's length (7 pays on the 7th,
    14th, 21st consecutive day), once a day."""
    if not streak.first_today:
        return []
    return [bonus for bonus in bonuses if streak.days % bonus.days == 0]
