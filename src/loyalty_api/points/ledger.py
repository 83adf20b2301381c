"""Pure ledger arithmetic: first-in first-out spending and proportional refunds."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LotBalance:
    lot_id: uuid.UUID
    remaining: int


def plan_spending(lots: Sequence[LotBalance], points: int) -> list[tuple[uuid.UUID, int]]:
    """Take `points` from `lots` in the order given (oldest expiry first). Raises if they hold too few."""
    plan: list[tuple[uuid.UUID, int]] = []
    left = points
    for lot in lots:
        if left == 0:
            break
        take = min(lot.remaining, left)
        if take > 0:
            plan.append((lot.lot_id, take))
            left -= take
    if left:
        raise ValueError(f"lots hold {points - left} points, {points} needed: the ledger invariant is broken")
    return plan


@dataclass(frozen=True, slots=True)
class RefundShares:
    take_back: int
    give_back: int


def refund_shares(
    *,
    order_amount: int,
    refunded_before: int,
    refund: int,
    points_earned: int,
    taken_back_before: int,
    points_redeemed: int,
    given_back_before: int,
) -> RefundShares:
    """Points to take back and give back for refunding `refund` of an order of `order_amount`.

    Computed on the cumulative refunded amount and rounded down, then less what earlier refunds moved, so
    any series of partial refunds adds up to exactly what one refund of the same total would, and a full
    refund moves exactly everything the order earned and redeemed.
    """
    if order_amount <= 0:
        return RefundShares(take_back=0, give_back=0)
    refunded = refunded_before + refund
    take_target = points_earned * refunded // order_amount
    give_target = points_redeemed * refunded // order_amount
    return RefundShares(
        take_back=max(take_target - taken_back_before, 0), give_back=max(give_target - given_back_before, 0)
    )
