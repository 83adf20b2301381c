from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty_api.points.ledger import (
    LotBalance,
    LotOnBooks,
    PaidFrom,
    StoredAccount,
    lots_for_order,
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


class TestLotsForOrder:
    def test_own_lots_first_then_others_still_good_then_with_others_ended_those_past_their_end(self) -> None:
        ended_other, ended_own, good_other, good_own = (uuid.uuid4() for _ in range(4))
        lots = [  # oldest end first, as the books list them
            LotOnBooks(ended_other, 10, "X", ended=True),
            LotOnBooks(ended_own, 20, "E", ended=True),
            LotOnBooks(good_other, 30, None, ended=False),
            LotOnBooks(good_own, 40, "E", ended=False),
        ]
        ordered, own = lots_for_order(lots, "E", others_ended=True)
        assert [lot.lot_id for lot in ordered] == [ended_own, good_own, good_other, ended_other]
        assert own == {ended_own, good_own}
        # A settlement of what E owes never takes X's points past their end: they were the expiry's.
        ordered, _ = lots_for_order(lots, "E", others_ended=False)
        assert [lot.lot_id for lot in ordered] == [ended_own, good_own, good_other]


class TestStoredAccount:
    def test_without_own_points_owing_a_run_out_hold_settles_from_points_still_good(self) -> None:
        # 300 on the books, 200 of them past their end; a run-out hold of 150; 100 owed by another order.
        account = StoredAccount(balance=300, held=150, expired_held=150, due=200, shortfall=100)
        assert account.as_a_spend_finds() == (0, 0)  # 100 settle from the good ones, the 200 expire

    def test_points_past_their_end_never_settle_another_order(self) -> None:
        # The hold spared 200 past their end, all the member has; another order owes 100.
        account = StoredAccount(balance=200, held=200, expired_held=200, due=200, shortfall=100)
        assert account.as_a_spend_finds() == (0, 0)  # they expire: the 100 stay owed

    def test_an_order_s_own_points_pay_for_it_first(self) -> None:
        # 300 of the order's own past their end, 300 good of the member's own; a run-out hold of 600 kept the
        # order's refund from taking them: it owes 300.
        account = StoredAccount(
            balance=600, held=600, expired_held=600, due=300, shortfall=300, own_due=300, own_live=0
        )
        assert account.as_a_spend_finds() == (300, 0)

    def test_with_nothing_run_out_points_past_their_end_go_as_far_as_points_are_free(self) -> None:
        account = StoredAccount(balance=300, held=100, expired_held=0, due=250, shortfall=50, own_due=50)
        assert account.as_a_spend_finds() == (100, 100)


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
