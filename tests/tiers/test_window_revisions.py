"""Revisions of a tier's window (pure): a change that moves members' ends makes the next one, and an end
worked out under an earlier one is re-dated through each change since, as the members stored then were."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty_api.tiers.ladder import INSTANT, LadderTier, Metric, PastWindow, StoredEnd, Window, year_end

SHANGHAI = ZoneInfo("Asia/Shanghai")
WON = datetime(2026, 3, 16, 10, tzinfo=UTC)
NEW_YEAR_2028 = datetime(2027, 12, 31, 16, tzinfo=UTC)  # 1 January 2028 in Shanghai


def silver(window: Window = Window.rolling_days, window_days: int | None = 90) -> LadderTier:
    return LadderTier(
        id=uuid.uuid4(),
        rank=1,
        code="silver",
        name="Silver",
        metric=Metric.spend,
        window=window,
        window_days=window_days,
        threshold=100_000,
        points_multiplier=Decimal(1),
        grace_days=30,
    )


class TestNewRevision:
    def test_a_change_that_moves_ends_makes_the_next_revision_keeping_the_window_before(self) -> None:
        longer = silver().with_window(Window.rolling_days, 365)
        assert (longer.revision, longer.past_windows) == (2, (PastWindow(1, Window.rolling_days, 90),))
        year = longer.with_window(Window.calendar_year, None)
        assert year.revision == 3
        assert year.past_windows[-1] == PastWindow(2, Window.rolling_days, 365)

    def test_a_change_that_moves_no_end_keeps_the_revision(self) -> None:
        """A shorter rolling window, or one after a calendar year, ends where the window before did: an end
        of either is the same end under the other."""
        year = silver(Window.calendar_year, None)
        assert year.with_window(Window.rolling_days, 365).revision == 1
        assert silver(window_days=365).with_window(Window.rolling_days, 90).revision == 1


class TestAsItStands:
    def test_an_end_of_an_earlier_revision_goes_through_each_change_since(self) -> None:
        """90 days, 365 (275 days on), a calendar year (the 1 January after): straight from 90 days to a
        year it would end on 1 January 2027."""
        tier = silver().with_window(Window.rolling_days, 365).with_window(Window.calendar_year, None)
        ninety = StoredEnd(at=WON + timedelta(days=90), revision=1)
        assert tier.as_it_stands(ninety, SHANGHAI) == NEW_YEAR_2028
        a_year = StoredEnd(at=WON + timedelta(days=365), revision=2)
        assert tier.as_it_stands(a_year, SHANGHAI) == NEW_YEAR_2028

    def test_a_change_that_moves_no_end_after_one_that_did_keeps_the_window_the_earlier_ends_go_through(
        self,
    ) -> None:
        """90 days, then 365 (275 days on), then 200 (shorter: no end moves): an end of the 90-day window the
        worker has not stored yet is where the members re-dated then were, 365 days from the purchase; taken
        straight from 90 days to 200 it would end 110 days on, sooner than it was read before the second
        change. So too a calendar year, then a rolling window: the 1 January after the end, not the end."""
        tier = silver().with_window(Window.rolling_days, 365).with_window(Window.rolling_days, 200)
        assert tier.revision == 2
        ninety = StoredEnd(at=WON + timedelta(days=90), revision=1)
        assert tier.as_it_stands(ninety, SHANGHAI) == WON + timedelta(days=365)
        a_year = StoredEnd(at=WON + timedelta(days=365), revision=2)
        assert tier.as_it_stands(a_year, SHANGHAI) == WON + timedelta(days=365)
        shorter = StoredEnd(at=WON + timedelta(days=200), revision=2)  # upgraded after the second change
        assert tier.as_it_stands(shorter, SHANGHAI) == WON + timedelta(days=200)

        rolling = silver().with_window(Window.calendar_year, None).with_window(Window.rolling_days, 30)
        ninety = StoredEnd(at=WON + timedelta(days=90), revision=1)
        assert rolling.as_it_stands(ninety, SHANGHAI) == datetime(2026, 12, 31, 16, tzinfo=UTC)

    def test_an_end_of_the_revision_the_tier_has_or_of_none_or_of_a_later_one_is_its_own(self) -> None:
        tier = silver().with_window(Window.rolling_days, 365)
        end = WON + timedelta(days=365)
        for revision in (2, None, 3):  # 3: stored by a process that read a later ladder than this
            assert tier.as_it_stands(StoredEnd(at=end, revision=revision), SHANGHAI) == end


class TestShorterThenLonger:
    """A window made shorter ends where it did; made longer again, it counts from the purchase that won the
    tier, never from the shorter window's start (365 days, then 90, then 365 put the ends 275 days on)."""

    def test_an_end_of_the_longer_window_comes_back_where_it_was(self) -> None:
        tier = silver(window_days=365)
        end = tier.stored(WON + timedelta(days=365))
        again = tier.with_window(Window.rolling_days, 90).with_window(Window.rolling_days, 365)
        assert again.as_it_stands(end, SHANGHAI) == WON + timedelta(days=365)

    def test_an_end_won_under_the_shorter_window_runs_the_longer_one_from_its_purchase(self) -> None:
        shorter = silver(window_days=365).with_window(Window.rolling_days, 90)
        end = shorter.stored(WON + timedelta(days=90))
        assert end.days == 90
        longer = shorter.with_window(Window.rolling_days, 365)
        assert longer.as_it_stands(end, SHANGHAI) == WON + timedelta(days=365)

    def test_the_worker_stores_an_end_with_the_days_it_runs_so_a_later_window_counts_from_its_start(
        self,
    ) -> None:
        """365, 90, then 200 (longer than 90: the worker stores the ends), then 365: the end the worker stored
        after 200 is still 365 days from the purchase; stored as a 200-day end, 365 would read 165 days on."""
        tier = silver(window_days=365)
        end = tier.stored(WON + timedelta(days=365))
        two_hundred = tier.with_window(Window.rolling_days, 90).with_window(Window.rolling_days, 200)
        stored = two_hundred.restored(end, SHANGHAI)
        assert stored == StoredEnd(at=WON + timedelta(days=365), revision=two_hundred.revision, days=365)
        again = two_hundred.with_window(Window.rolling_days, 365)
        assert again.as_it_stands(stored, SHANGHAI) == WON + timedelta(days=365)


def _as_told(windows: list[tuple[Window, int | None]], won_under: int, won_at: datetime) -> datetime:
    """The end a member who won the tier at `won_at` under `windows[won_under]` has after the rest of
    `windows`, by the rules as the README gives them: a new window never ends sooner; a calendar year ends on
    the 1 January at or after the old end; a rolling window runs its days from the purchase that won the tier
    (the start of the old one), and after a calendar year ends where the year did, as a window of its days."""
    window, days = windows[won_under]
    if window is Window.calendar_year:
        end, start = year_end(won_at, SHANGHAI), None
    else:
        assert days is not None
        end, start = won_at + timedelta(days=days), won_at
    for window, days in windows[won_under + 1 :]:
        if window is Window.calendar_year:
            end, start = year_end(end - INSTANT, SHANGHAI), None
            continue
        assert days is not None
        if start is None:
            start = end - timedelta(days=days)
        end = max(end, start + timedelta(days=days))
    return end


_WINDOWS = st.one_of(
    st.just((Window.calendar_year, None)),
    st.tuples(st.just(Window.rolling_days), st.sampled_from([30, 60, 90, 120, 200, 365, 400, 730])),
)


class TestAnySequenceOfWindows:
    @settings(max_examples=1000, deadline=None)
    @given(st.lists(_WINDOWS, min_size=1, max_size=7), st.data())
    def test_an_end_is_the_one_its_purchase_won_whenever_the_worker_stored_it(
        self, windows: list[tuple[Window, int | None]], data: st.DataObject
    ) -> None:
        """Won under any window of a sequence of changes (or stored by a process that read the ladder then),
        read after the last: the end the rules give, never sooner than after any change before, and the same
        whether the worker (or an override's end, which gives back what it stores) stored it at any of the
        changes since or not."""
        window, days = windows[0]
        tiers = [silver(window, days)]
        for window, days in windows[1:]:
            tiers.append(tiers[-1].with_window(window, days))
        won_under = data.draw(st.integers(0, len(windows) - 1))
        won_at = WON + timedelta(days=data.draw(st.integers(0, 400)), hours=data.draw(st.integers(0, 23)))
        end = tiers[won_under].stored(tiers[won_under].window_end(won_at, SHANGHAI))
        final = tiers[-1]
        read = final.as_it_stands(end, SHANGHAI)
        assert read == _as_told(windows, won_under, won_at)
        stored = end
        for tier in tiers[won_under + 1 :]:
            if data.draw(st.booleans()):
                stored = tier.restored(stored, SHANGHAI)
        assert final.as_it_stands(stored, SHANGHAI) == read
        told = [tier.as_it_stands(end, SHANGHAI) for tier in tiers[won_under:]]
        assert told == sorted(told)
