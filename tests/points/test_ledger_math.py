from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty_api.points.ledger import LotBalance, plan_spending, refund_shares


class TestPlanSpending:
    def test_takes_oldest_first(self) -> None:
        a, b, c = (uuid.uuid4() for _ in range(3))
        plan = plan_spending([LotBalance(a, 10), LotBalance(b, 0), LotBalance(c, 30)], 25)
        assert plan == [(a, 10), (c, 15)]

    def test_refuses_to_overspend(self) -> None:
        with pytest.raises(ValueError, match="invariant"):
            plan_spending([LotBalance(uuid.uuid4(), 5)], 6)


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
