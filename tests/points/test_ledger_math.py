from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty_api.points.ledger import (
    LotBalance,
    PaidFrom,
    plan_giving_back,
    plan_spending,
    points_refund_shares,
    refund_shares,
    refunded_for_points,
    remaining_shares,
)


class TestPlanSpending:
    def test_takes_oldest_first(self) -> None:
        a, b, c = (uuid.uuid4() for _ in range(3))
        plan = plan_spending([LotBalance(a, 10), LotBalance(b, 0), LotBalance(c, 30)], 25)
        assert plan == [(a, 10), (c, 15)]

    def test_refuses_to_overspend(self) -> None:
        with pytest.raises(ValueError, match="invariant"):
            plan_spending([LotBalance(uuid.uuid4(), 5)], 6)


class TestPlanGivingBack:
    def test_the_last_spent_first_after_what_was_given_back(self) -> None:
        now = datetime(2026, 6, 1, tzinfo=UTC)
        first, second, third = (
            PaidFrom(uuid.uuid4(), uuid.uuid4(), ref, now, now, 10) for ref in ("A", "B", "C")
        )
        paid = [first, second, third]  # in the order the payment spent them
        assert plan_giving_back(paid, given_back_before=0, points=15) == ([(third, 10), (second, 5)], 0)
        assert plan_giving_back(paid, given_back_before=15, points=10) == ([(second, 5), (first, 5)], 0)
        # What the payment's entry names no lot for goes to a fresh lot.
        assert plan_giving_back(paid, given_back_before=25, points=10) == ([(first, 5)], 5)
        assert plan_giving_back([], given_back_before=0, points=30) == ([], 30)

    def test_points_keep_the_time_they_had_left_when_spent(self) -> None:
        spent = datetime(2026, 6, 1, tzinfo=UTC)
        lot = PaidFrom(uuid.uuid4(), uuid.uuid4(), "A", spent + timedelta(days=1), spent, 10)
        assert lot.end_on_return(spent + timedelta(days=30)) == spent + timedelta(days=31)
        ended = PaidFrom(uuid.uuid4(), uuid.uuid4(), "A", spent - timedelta(days=1), spent, 10)
        assert ended.end_on_return(spent + timedelta(days=30)) == spent + timedelta(days=29)
        never = PaidFrom(uuid.uuid4(), uuid.uuid4(), "A", None, spent, 10)
        assert never.end_on_return(spent + timedelta(days=30)) is None


class TestRefundShares:
    def test_full_refund_moves_everything(self) -> None:
        shares = refund_shares(
            order_amount=9_990,
            refunded_before=0,
            refund=9_990,
            points_earned=99,
            taken_back_before=0,
            points_redeemed=500,
            given_back_before=0,
        )
        assert (shares.take_back, shares.give_back) == (99, 500)

    @given(
        order=st.integers(1, 10**7),
        earned=st.integers(0, 10**6),
        redeemed=st.integers(0, 10**6),
        cuts=st.lists(st.integers(1, 100), min_size=1, max_size=8),
    )
    def test_partial_refunds_add_up_to_one_refund_of_the_same_total(
        self, order: int, earned: int, redeemed: int, cuts: list[int]
    ) -> None:
        weights = sum(cuts)
        parts = [order * c // weights for c in cuts]
        parts[-1] += order - sum(parts)
        taken = given_back = refunded = 0
        for part in parts:
            shares = refund_shares(
                order_amount=order,
                refunded_before=refunded,
                refund=part,
                points_earned=earned,
                taken_back_before=taken,
                points_redeemed=redeemed,
                given_back_before=given_back,
            )
            assert shares.take_back >= 0 and shares.give_back >= 0
            taken += shares.take_back
            given_back += shares.give_back
            refunded += part
            assert taken <= earned and given_back <= redeemed
        assert (taken, given_back) == (earned, redeemed)


class TestPointsRefundShares:
    def test_takes_back_earned_points_in_the_proportion_given_back(self) -> None:
        shares = points_refund_shares(
            refund_points=50, points_redeemed=200, given_back_before=0, points_earned=80, taken_back_before=0
        )
        assert (shares.give_back, shares.take_back) == (50, 20)

    def test_an_order_that_earned_nothing_only_gives_back(self) -> None:
        shares = points_refund_shares(
            refund_points=30, points_redeemed=100, given_back_before=0, points_earned=0, taken_back_before=0
        )
        assert (shares.give_back, shares.take_back) == (30, 0)

    def test_refuses_more_than_is_left_to_give_back(self) -> None:
        with pytest.raises(ValueError, match="70 redeemed points are left"):
            points_refund_shares(
                refund_points=71,
                points_redeemed=100,
                given_back_before=30,
                points_earned=0,
                taken_back_before=0,
            )

    @given(
        redeemed=st.integers(1, 10**6),
        earned=st.integers(0, 10**6),
        cuts=st.lists(st.integers(1, 100), min_size=1, max_size=8),
    )
    def test_partial_refunds_add_up_to_one_refund_of_everything(
        self, redeemed: int, earned: int, cuts: list[int]
    ) -> None:
        weights = sum(cuts)
        parts = [redeemed * c // weights for c in cuts]
        parts[-1] += redeemed - sum(parts)
        given_back = taken = 0
        for part in parts:
            shares = points_refund_shares(
                refund_points=part,
                points_redeemed=redeemed,
                given_back_before=given_back,
                points_earned=earned,
                taken_back_before=taken,
            )
            assert shares.give_back == part and shares.take_back >= 0
            given_back += shares.give_back
            taken += shares.take_back
            assert taken == earned * given_back // redeemed  # the same as one refund of the points so far
        assert (given_back, taken) == (redeemed, earned)


class TestRefundedForPoints:
    @given(order=st.integers(1, 10**7), redeemed=st.integers(1, 10**6), data=st.data())
    def test_is_the_least_amount_whose_share_gives_the_points_back(
        self, order: int, redeemed: int, data: st.DataObject
    ) -> None:
        given_back = data.draw(st.integers(0, redeemed))
        amount = refunded_for_points(order_amount=order, points_redeemed=redeemed, given_back=given_back)
        assert 0 <= amount <= order
        assert redeemed * amount // order >= given_back
        if amount > 0:
            assert redeemed * (amount - 1) // order < given_back

    def test_all_the_points_are_all_of_the_order(self) -> None:
        assert refunded_for_points(order_amount=10_000, points_redeemed=200, given_back=200) == 10_000
        assert refunded_for_points(order_amount=10_000, points_redeemed=200, given_back=50) == 2_500
        assert refunded_for_points(order_amount=10, points_redeemed=3, given_back=1) == 4
        assert refunded_for_points(order_amount=10_000, points_redeemed=0, given_back=0) == 0


class TestMixedRefunds:
    """Refunds by amount and by points on one order, then a full one: what the service does, in numbers."""

    @given(
        order=st.integers(1, 10**6),
        earned=st.integers(0, 10**5),
        redeemed=st.integers(1, 10**5),
        steps=st.lists(st.tuples(st.booleans(), st.integers(1, 100)), max_size=8),
    )
    def test_never_move_more_and_a_full_refund_moves_exactly_the_rest(
        self, order: int, earned: int, redeemed: int, steps: list[tuple[bool, int]]
    ) -> None:
        refunded = given_back = taken = 0
        for by_points, percent in steps:
            if by_points:
                part = min(max(redeemed * percent // 100, 1), redeemed - given_back)
                if part == 0:
                    continue
                shares = points_refund_shares(
                    refund_points=part,
                    points_redeemed=redeemed,
                    given_back_before=given_back,
                    points_earned=earned,
                    taken_back_before=taken,
                )
                reached = refunded_for_points(
                    order_amount=order, points_redeemed=redeemed, given_back=given_back + part
                )
                refunded = max(refunded, reached)
            else:
                part = min(max(order * percent // 100, 1), order - refunded)
                if part == 0:
                    continue
                shares = refund_shares(
                    order_amount=order,
                    refunded_before=refunded,
                    refund=part,
                    points_earned=earned,
                    taken_back_before=taken,
                    points_redeemed=redeemed,
                    given_back_before=given_back,
                )
                refunded += part
            given_back += shares.give_back
            taken += shares.take_back
            assert 0 <= refunded <= order and 0 <= given_back <= redeemed and 0 <= taken <= earned
        rest = remaining_shares(
            points_earned=earned,
            taken_back_before=taken,
            points_redeemed=redeemed,
            given_back_before=given_back,
        )
        assert (given_back + rest.give_back, taken + rest.take_back) == (redeemed, earned)
