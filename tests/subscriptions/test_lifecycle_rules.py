"""The state machine and the period arithmetic, as plain functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from loyalty_api.subscriptions.errors import TransitionNotAllowed
from loyalty_api.subscriptions.lifecycle import (
    TRANSITIONS,
    Action,
    State,
    after,
    benefits_until,
    next_action_at,
    period_bounds,
)

T0 = datetime(2026, 1, 31, 12, tzinfo=UTC)


class TestTransitions:
    def test_the_issue_s_paths_are_allowed(self) -> None:
        assert after(State.trialing, Action.convert) is State.active
        assert after(State.active, Action.lapse) is State.past_due
        assert after(State.past_due, Action.recover) is State.active
        assert after(State.past_due, Action.expire) is State.expired
        assert after(State.active, Action.cancel) is State.canceled
        assert after(State.canceled, Action.expire) is State.expired

    @pytest.mark.parametrize("action", list(Action))
    def test_expired_is_final(self, action: Action) -> None:
        with pytest.raises(TransitionNotAllowed) as refused:
            after(State.expired, action)
        assert refused.value.extra == {"state": "expired", "action": action.value}

    def test_everything_outside_the_table_is_refused(self) -> None:
        refused = [
            (state, action) for state in State for action in Action if (state, action) not in TRANSITIONS
        ]
        for state, action in refused:
            with pytest.raises(TransitionNotAllowed):
                after(state, action)
        assert (State.active, Action.resume) in refused
        assert (State.canceled, Action.cancel) in refused
        assert (State.past_due, Action.upgrade) in refused

    def test_only_expired_has_no_benefits_and_only_a_renewing_one_looks_past_period_end(self) -> None:
        end, grace_until, grace = T0, T0 + timedelta(days=3), timedelta(days=3)
        found = [benefits_until(s, end, grace_until, 3, UTC) for s in State]
        assert found == [end + grace, end + grace, grace_until, end, None]


class TestPeriods:
    def test_monthly_periods_from_a_month_end_anchor_return_to_the_31st(self) -> None:
        ends = [period_bounds(T0, 1, 1, n, UTC)[1].date().isoformat() for n in (1, 2, 3, 4)]
        assert ends == ["2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31"]

    def test_consecutive_periods_touch(self) -> None:
        for n in range(1, 30):
            assert period_bounds(T0, 1, 1, n, UTC)[1] == period_bounds(T0, 1, 1, n + 1, UTC)[0]

    def test_yearly_from_29_february(self) -> None:
        leap = datetime(2028, 2, 29, tzinfo=UTC)
        assert [period_bounds(leap, 1, 12, n, UTC)[1].date().isoformat() for n in (1, 4)] == [
            "2029-02-28",
            "2032-02-29",
        ]

    def test_months_turn_in_the_programme_s_time_zone(self) -> None:
        shanghai = ZoneInfo("Asia/Shanghai")
        # 1 March 05:00 in Shanghai is 28 February 21:00 UTC: a month later is 1 April 05:00 there.
        start = datetime(2027, 3, 1, 5, tzinfo=shanghai).astimezone(UTC)
        assert start.day == 28
        end = period_bounds(start, 1, 1, 1, shanghai)[1]
        assert (end.tzinfo, end.astimezone(shanghai)) == (UTC, datetime(2027, 4, 1, 5, tzinfo=shanghai))

    def test_local_time_holds_across_a_change_to_summer_time(self) -> None:
        berlin = ZoneInfo("Europe/Berlin")
        start = datetime(2027, 3, 15, 10, tzinfo=berlin).astimezone(UTC)  # 09:00 UTC, winter time
        assert period_bounds(start, 1, 1, 1, berlin)[1] == datetime(2027, 4, 15, 8, tzinfo=UTC)


class TestNextAction:
    def test_the_notice_comes_before_the_period_end(self) -> None:
        at = next_action_at(
            state=State.active,
            period_number=2,
            period_end=T0,
            grace_until=None,
            notice_sent_for=1,
            next_coupon_at=None,
            notice=timedelta(hours=72),
        )
        assert at == T0 - timedelta(hours=72)

    def test_after_the_notice_the_period_end(self) -> None:
        at = next_action_at(
            state=State.active,
            period_number=2,
            period_end=T0,
            grace_until=None,
            notice_sent_for=2,
            next_coupon_at=T0 - timedelta(days=9),
            notice=timedelta(hours=72),
        )
        assert at == T0 - timedelta(days=9)  # a monthly coupon due earlier comes first

    def test_expired_needs_nothing_ever(self) -> None:
        at = next_action_at(
            state=State.expired,
            period_number=2,
            period_end=T0,
            grace_until=T0,
            notice_sent_for=1,
            next_coupon_at=T0,
            notice=timedelta(hours=72),
        )
        assert at is None
