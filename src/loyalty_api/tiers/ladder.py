"""The tier ladder and the rules of qualification. Pure: no I/O, no clock (times come in).

A tier is qualified for when the member's value of its metric (qualifying spend in minor units, or qualifying
points) over its window reaches its threshold. The lowest tier is everyone's: it needs nothing and is never
lost. Once a member qualifies for a tier they keep it for the rest of the window plus the tier's grace days:
- calendar year: until the next 1 January (in the programme's time zone), plus grace;
- rolling N days: for N days from the purchase that qualified, plus grace.
Requalifying (another qualifying purchase) pushes that date on; the review job looks again only after it,
and judges the window that ended when the grace began (the calendar year just past, or the N days after the
purchase that qualified, which counted for the window it won and is not counted again):
whoever reached the bar in it is renewed for the window under way, plus grace. So a calendar-year tier won
in year Y is kept through Y+1 and its grace while Y+1 is judged; a purchase during the grace that reaches
the bar of the new window requalifies at once.

What is stored of a member on a tier is the end of the window their review judges; the date they keep the
tier until is that end plus the tier's grace as it stands (`LadderTier.kept_until`), so a change of the grace
moves nobody's stored date. The grace is days of the programme's calendar, ending at the time of day there the
window ended (a rolling window's own days are spans of 24 hours from the purchase, as its purchases are read).
A change of the window moves the ends it changes (`LadderTier.restored`), so that what members were promised
still holds under the new rules. Such a change makes a new revision of the tier's window, and each stored end
names the revision it was worked out under: an end of an earlier one (worked out by a process that read the
ladder before the change) is re-dated through each change since (`LadderTier.as_it_stands`). A rolling
window's end also keeps how many days it runs from the purchase that won or renewed the tier: made shorter, a
window ends where it did, and made longer again it counts from that purchase, not from the shorter window's
start.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from typing import Protocol
from zoneinfo import ZoneInfo

from loyalty_api.calendar_days import add_days
from loyalty_api.clock import format_instant
from loyalty_api.grants.granted import GrantedBenefit

LADDER_CACHE_KEY = "tier_ladder"
INSTANT = timedelta(microseconds=1)  # the smallest step of a stored time


class Metric(StrEnum):
    spend = "spend"  # what was paid for purchases, less refunds, in minor units of the programme currency
    points = "points"  # points earned on purchases, less points taken back by refunds


class Window(StrEnum):
    calendar_year = "calendar_year"
    rolling_days = "rolling_days"


class Downgrade(StrEnum):
    one_step = "one_step"  # one rung down at a time
    to_qualified = "to_qualified"  # straight to the tier the member qualifies for now


@dataclass(frozen=True, slots=True)
class TierRef:
    """A tier wherever one appears in a reply, a webhook payload or GraphQL: its code, name and rank."""

    code: str
    name: str
    rank: int


def year_end(at: datetime, zone: ZoneInfo) -> datetime:
    """The 1 January after `at`, in the programme's time zone: when the calendar year of `at` ends."""
    local = at.astimezone(zone)
    return local.replace(
        year=local.year + 1, month=1, day=1, hour=0, minute=0, second=0, microsecond=0
    ).astimezone(at.tzinfo)


class Windowed(Protocol):
    """A tier's window: a calendar year, or the last `window_days` days."""

    @property
    def window(self) -> Window: ...

    @property
    def window_days(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class PastWindow:
    """A window a tier had, as revision `revision` of it, before a change of it (one that moved its members'
    ends, which made the next revision, or one that did not)."""

    revision: int
    window: Window
    window_days: int | None


@dataclass(frozen=True, slots=True)
class StoredEnd:
    """The end of the window a member's review judges, as stored: worked out under revision `revision` of
    their tier's window (`LadderTier.as_it_stands` gives it under the window the tier has). None: written by
    the code before revisions (a process not yet upgraded, during a deploy), taken as of the window the tier
    has. `days`: for a rolling window, how many days it runs from the purchase that won or renewed the tier
    to this end, which a later longer window counts from (None: a calendar year, or written before 0044,
    taken as the window of its revision)."""

    at: datetime
    revision: int | None
    days: int | None = None


@dataclass(frozen=True, slots=True)
class LadderTier:
    id: uuid.UUID
    rank: int
    code: str
    name: str
    metric: Metric
    window: Window
    window_days: int | None
    threshold: int
    points_multiplier: Decimal
    grace_days: int
    benefits: tuple[GrantedBenefit, ...] = ()
    revision: int = 1  # of its window (module docstring)
    # The earlier windows, oldest first: of the earlier revisions, and those this one had before a change that
    # moved no end (`with_window`).
    past_windows: tuple[PastWindow, ...] = ()

    @property
    def ref(self) -> TierRef:
        return TierRef(code=self.code, name=self.name, rank=self.rank)

    def window_start(self, now: datetime, zone: ZoneInfo) -> datetime:
        """The first instant whose purchases count towards this tier at `now`."""
        if self.window is Window.rolling_days:
            assert self.window_days is not None
            return now - timedelta(days=self.window_days)
        local = now.astimezone(zone)
        return local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(now.tzinfo)

    def judged_start(self, end: datetime, zone: ZoneInfo) -> datetime:
        """The first instant whose purchases count when a review judges this tier's window ending at `end`.
        A rolling window starts just after the purchase that won or renewed the tier (`end` less the window):
        that purchase counted for the window that won it, and counting it again would keep the tier for two
        windows on one purchase. A calendar year is the year just past, whatever won it."""
        if self.window is Window.rolling_days:
            assert self.window_days is not None
            return end - timedelta(days=self.window_days) + INSTANT
        return self.window_start(end - INSTANT, zone)

    def window_end(self, qualified_at: datetime, zone: ZoneInfo) -> datetime:
        """The end of the window a member who qualifies at `qualified_at` is judged on at their review."""
        if self.window is Window.rolling_days:
            assert self.window_days is not None
            return qualified_at + timedelta(days=self.window_days)
        return year_end(qualified_at, zone)

    def kept_until(self, window_end: datetime, zone: ZoneInfo) -> datetime:
        """Until when a member judged on this tier's window ending at `window_end` keeps it: its grace on, in
        days of the programme's calendar (`zone`), so the same time there as the window ended."""
        return add_days(window_end, self.grace_days, zone)

    def judged_end(self, kept_until: datetime, zone: ZoneInfo) -> datetime:
        """The end of the window whose grace ends at `kept_until`."""
        return add_days(kept_until, -self.grace_days, zone)

    def stored(self, end: datetime) -> StoredEnd:
        """`end`, worked out under the window this tier has, as it is stored."""
        return StoredEnd(at=end, revision=self.revision, days=self.window_days if self.rolling else None)

    @property
    def rolling(self) -> bool:
        return self.window is Window.rolling_days

    def as_it_stands(self, end: StoredEnd, zone: ZoneInfo) -> datetime:
        """A stored end under the window this tier has: re-dated as each change of the window since the
        revision it was worked out under re-dated the ends stored then. An end of a later revision than this
        ladder knows (read before that change) is taken as it is."""
        return self.restored(end, zone).at

    def restored(self, end: StoredEnd, zone: ZoneInfo) -> StoredEnd:
        """`end` as it stands (`as_it_stands`), as the worker stores it: of this revision, with the days from
        the start of its window, which the changes since keep (a shorter window ends where the longer one did,
        and a longer one after it counts from that same start)."""
        if end.revision is None or end.revision >= self.revision:
            return end
        windows: list[Windowed] = [past for past in self.past_windows if past.revision >= end.revision]
        own: list[Windowed] = [past for past in self.past_windows if past.revision == end.revision] or [self]
        at, start = end.at, _start(end, own)
        # The changes within its own revision moved no end, and some came before it was stored: only those
        # of later revisions move it, each counted from the start of its window.
        for before, after in pairwise([own[-1], *windows[len(own) :], self]):
            if same_window(before, after):
                continue
            if after.window is Window.calendar_year:
                at, start = year_end(at - INSTANT, zone), None
                continue
            assert after.window_days is not None
            if start is None:  # after a calendar year: it ends where the year did, as a window of these days
                start = at - timedelta(days=after.window_days)
            else:
                at = max(at, start + timedelta(days=after.window_days))
        days = None if start is None else (at - start) // timedelta(days=1)
        return StoredEnd(at=at, revision=self.revision, days=days)

    def with_window(self, window: Window, window_days: int | None) -> LadderTier:
        """The tier with `window`: a new revision of it when that moves the ends worked out under the one it
        has. Any other change of the window keeps the revision but is kept among the past windows all the
        same (under the revision it keeps): an end of an earlier revision still to be re-dated (the worker
        has not been yet, or a process not told of the changes stores one) goes through the window the
        change that moved the ends went to, not straight to this one, which may end sooner (365 days, then
        730, then 500: a year on, not 135 days; a calendar year, then a rolling window: the 1 January after
        the end, not the end). A change that moves no end adds nothing along the way."""
        after = replace(self, window=window, window_days=window_days)
        if same_window(self, after):
            return after
        past = PastWindow(revision=self.revision, window=self.window, window_days=self.window_days)
        revision = self.revision + 1 if moves_ends(self, after) else self.revision
        return replace(after, revision=revision, past_windows=(*self.past_windows, past))


def _start(end: StoredEnd, own: Sequence[Windowed]) -> datetime | None:
    """When the rolling window ending at `end` began, `own` being its revision's windows, oldest first (None:
    a calendar year's end): its own days when stored with them; else (stored before 0044) those of its
    revision's first rolling window, or the one a calendar year's end became within its revision."""
    if end.days is not None:
        return end.at - timedelta(days=end.days)
    days = next((window.window_days for window in own if window.window is Window.rolling_days), None)
    return None if days is None else end.at - timedelta(days=days)


@dataclass(frozen=True, slots=True)
class Ladder:
    version: int
    tiers: tuple[LadderTier, ...]  # lowest rank first

    @property
    def entry(self) -> LadderTier | None:
        return self.tiers[0] if self.tiers else None

    def by_id(self, tier_id: uuid.UUID | None) -> LadderTier | None:
        return next((t for t in self.tiers if t.id == tier_id), None)

    def by_code(self, code: str) -> LadderTier | None:
        return next((t for t in self.tiers if t.code == code), None)

    def above(self, tier: LadderTier) -> LadderTier | None:
        return next((t for t in self.tiers if t.rank > tier.rank), None)

    def below(self, tier: LadderTier) -> LadderTier | None:
        return next((t for t in reversed(self.tiers) if t.rank < tier.rank), None)

    def windows(self, now: datetime, zone: ZoneInfo, *, ended: bool = False) -> set[datetime]:
        """The distinct window starts the ladder's tiers need at `now` (the entry tier needs none); with
        `ended`, those of the windows a review judges that end at `now`."""
        return {t.judged_start(now, zone) if ended else t.window_start(now, zone) for t in self.tiers[1:]}


@dataclass(frozen=True, slots=True)
class Standing:
    """A member's qualifying values at one moment: (spend, points) for each window start. With `ended`, the
    moment is the end of the windows a review judges (purchases before it count), not the present."""

    at: datetime
    values: Mapping[datetime, tuple[int, int]]
    ended: bool = False

    def start(self, tier: LadderTier, zone: ZoneInfo) -> datetime:
        return tier.judged_start(self.at, zone) if self.ended else tier.window_start(self.at, zone)

    def value(self, tier: LadderTier, zone: ZoneInfo) -> int:
        spend, points = self.values.get(self.start(tier, zone), (0, 0))
        return spend if tier.metric is Metric.spend else points

    def qualifies(self, tier: LadderTier, ladder: Ladder, zone: ZoneInfo) -> bool:
        return tier is ladder.entry or self.value(tier, zone) >= tier.threshold

    def as_record(self, ladder: Ladder, zone: ZoneInfo) -> dict[str, object]:
        """What the history keeps of this standing: each tier's value against its threshold."""
        return {
            t.code: {
                "metric": t.metric.value,
                "window_start": format_instant(self.start(t, zone)),
                "value": self.value(t, zone),
                "threshold": t.threshold,
            }
            for t in ladder.tiers[1:]
        }


def same_window(one: Windowed, other: Windowed) -> bool:
    return (one.window, one.window_days) == (other.window, other.window_days)


def moves_ends(before: Windowed, after: Windowed) -> bool:
    """Whether going from `before` to `after` moves any end (`LadderTier.restored`): a calendar year after
    anything, or a longer rolling window."""
    return not same_window(before, after) and (
        after.window is Window.calendar_year or longer_by(before, after) > 0
    )


def longer_by(before: Windowed, after: Windowed) -> int:
    """By how many days a rolling window `after` outlasts the rolling window `before` (0: not longer, or not
    both rolling)."""
    if before.window is not Window.rolling_days or after.window is not Window.rolling_days:
        return 0
    assert before.window_days is not None and after.window_days is not None
    return max(after.window_days - before.window_days, 0)


def qualified_tier(ladder: Ladder, standing: Standing, zone: ZoneInfo) -> LadderTier | None:
    """The highest tier the standing reaches (the entry tier at least)."""
    return next((t for t in reversed(ladder.tiers) if standing.qualifies(t, ladder, zone)), None)


def after_review(
    ladder: Ladder, current: LadderTier, standing: Standing, zone: ZoneInfo, policy: Downgrade
) -> LadderTier:
    """Where a member whose time on `current` is up lands: the tier they qualify for if it is as high,
    else one rung down or straight to what they qualify for, by the programme's policy."""
    qualified = qualified_tier(ladder, standing, zone) or current
    if qualified.rank >= current.rank or policy is Downgrade.to_qualified:
        return qualified
    return ladder.below(current) or current
