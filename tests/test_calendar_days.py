"""Days of the programme's calendar (calendar_days.py), as plain functions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from loyalty_api.calendar_days import add_days, latest_before

NEW_YORK = ZoneInfo("America/New_York")
STEP = timedelta(minutes=10)


def clock_changes(zone: ZoneInfo, year: int) -> Iterator[datetime]:
    """The instants (to the half hour) at which `zone`'s clocks change in `year`."""
    at = datetime(year, 1, 1, tzinfo=UTC)
    offset = at.astimezone(zone).utcoffset()
    while at.year == year:
        at += timedelta(minutes=30)
        if at.astimezone(zone).utcoffset() != offset:
            offset = at.astimezone(zone).utcoffset()
            yield at


def around(centre: datetime) -> list[datetime]:
    """Every STEP from six hours before `centre` to six hours after."""
    return [centre + STEP * n for n in range(-36, 36)]


class TestAddDays:
    @pytest.mark.parametrize(
        ("start", "days", "local_end"),
        [
            ("2026-10-28T12:00-04:00", 7, "2026-11-04T12:00-05:00"),  # clocks went back meanwhile
            ("2026-03-05T12:00-05:00", 7, "2026-03-12T12:00-04:00"),  # clocks went on
            ("2026-03-01T02:30-05:00", 7, "2026-03-08T03:30-04:00"),  # 02:30 is skipped: read as EST
            ("2026-10-25T01:30-04:00", 7, "2026-11-01T01:30-04:00"),  # 01:30 comes twice: the first
            ("2026-11-04T12:00-05:00", -7, "2026-10-28T12:00-04:00"),
        ],
    )
    def test_the_same_time_on_the_programme_s_clock(self, start: str, days: int, local_end: str) -> None:
        assert add_days(datetime.fromisoformat(start), days, NEW_YORK) == datetime.fromisoformat(local_end)

    def test_no_days_is_the_moment_itself_in_the_second_pass_of_a_repeated_hour(self) -> None:
        second_pass = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST, after 01:30 EDT
        assert add_days(second_pass, 0, NEW_YORK) == second_pass


class TestLatestBefore:
    @pytest.mark.parametrize(
        "zone",
        ["America/New_York", "America/Havana", "America/Santiago", "Australia/Lord_Howe", "Antarctica/Troll"],
    )
    @pytest.mark.parametrize("days", [1, 90])
    def test_no_start_whose_days_have_ended_is_after_it(self, zone: str, days: int) -> None:
        """Around each clock change (a grace ending near one, or starting near one) every start that the days
        have run out for by `moment` is at or before the walk's stop, which is at most the change's length
        after the last of them."""
        local = ZoneInfo(zone)
        for change in clock_changes(local, 2026):
            for moment in around(change) + around(change + timedelta(days=days)):
                # A change shifts an end by at most 2 hours (Troll's): every start whose days may have run out
                # by `moment`, and the first few whose days have not.
                starts = around(moment - timedelta(days=days))[12:-12]
                ended = [start for start in starts if add_days(start, days, local) <= moment]
                stop = latest_before(moment, days, local)
                assert max(ended) <= stop <= max(ended) + timedelta(hours=2), (moment, stop)

    def test_exact_away_from_a_clock_change(self) -> None:
        """A calendar year's members all end their window at midnight on 1 January: none is walked over
        before their 90 days of grace have run out, though these cross a clock change."""
        window_end = datetime(2027, 1, 1, 5, tzinfo=UTC)  # midnight in New York
        kept_until = add_days(window_end, 90, NEW_YORK)
        assert kept_until == datetime(2027, 4, 1, 4, tzinfo=UTC)
        assert latest_before(kept_until - timedelta(microseconds=1), 90, NEW_YORK) < window_end
        assert latest_before(kept_until, 90, NEW_YORK) == window_end
