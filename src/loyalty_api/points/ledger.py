"""Pure ledger arithmetic: first-in first-out spending and proportional refunds; the kinds of ledger entry and
of refund."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

# What changed a member's points: each ledger entry is one of these.
EntryType = Literal[
    "earn",
    "redeem",
    "hold",
    "capture",
    "release",
    "refund",
    "expire",
    "adjust",
    "reward",
    "exchange_out",  # points sent to a partner's programme
    "exchange_return",  # an exchange out the partner failed or let time out, given back
    "exchange_in",  # points a partner's customer sent us
    "referral",  # a referral's points: a referred member's first purchase, for them and their referrer
    "activity",  # an activity's points (a check-in, a review, …) and its streak bonus: activities/service.py
    "campaign",  # points a campaign granted to everyone in its audience: campaigns/service.py
    "transfer_out",  # points a member sent to another member: points/transfers.py
    "transfer_in",  # points a member received from another
    "transfer_return",  # a transfer an operator reversed: its points back with their sender
    "import",  # points a member held in the programme's previous system, brought over: profiles/imports.py
]
# How a refund is measured: a share of the order's total, a number of redeemed points, or all that is left.
RefundKind = Literal["amount", "points", "full"]


@dataclass(frozen=True, slots=True)
class LotBalance:
    lot_id: uuid.UUID
    remaining: int


@dataclass(frozen=True, slots=True)
class LotOnBooks:
    """A lot with points left: its order, and whether it is past its end (a hold spares it, or the expiry is
    yet to come)."""

    lot_id: uuid.UUID
    remaining: int
    order_ref: str | None
    ended: bool


def lots_for_order(
    lots: Sequence[LotOnBooks], order_ref: str, *, others_ended: bool
) -> tuple[list[LotBalance], set[uuid.UUID]]:
    """The lots a take for `order_ref` (its refund's take-back, a settlement of what it owes) spends, in
    order, from `lots` oldest end first: the order's own first, past their end or not; then the member's other
    points still good; with `others_ended`, last the other points past their end. With them, the lots that are
    the order's own."""
    own = [lot for lot in lots if lot.order_ref == order_ref]
    others = [lot for lot in lots if lot.order_ref != order_ref and (others_ended or not lot.ended)]
    others.sort(key=lambda lot: lot.ended)  # stable: soonest end first within each
    return [LotBalance(lot.lot_id, lot.remaining) for lot in own + others], {lot.lot_id for lot in own}


@dataclass(frozen=True, slots=True)
class StoredAccount:
    """A member's account as its row has it, with what the jobs have yet to settle: the points of holds past
    their time (`expired_held`), of lots past their end (`due`), the member's open shortfalls, and how much of
    those their orders' own points on the books would pay, from points past their end (`own_due`) and from
    points still good (`own_live`)."""

    balance: int
    held: int
    expired_held: int
    due: int
    shortfall: int
    own_due: int = 0
    own_live: int = 0

    def as_a_spend_finds(self) -> tuple[int, int]:
        """The balance and the points on hold as a spend now finds them, whether or not the jobs have run
        (points/accounts.debit_available): holds past their time free their points; an order's own points pay
        what it owes first (those past their end as they leave the books, those still good as far as the
        holds freed points still good), then what else the holds freed of the points still good settles the
        other shortfalls; then lots past their end take what they still hold out of what is free
        (accounts.settle_released, accounts.pay_with_own_points)."""
        held = self.held - self.expired_held
        free = max(self.balance - held, 0)
        own_due = min(self.own_due, free)
        own_live = min(self.own_live, self.expired_held, max(free - self.due, 0))
        spare = max(min(self.expired_held - own_live, free - self.due - own_live), 0)
        settled = min(spare, self.shortfall - own_due - own_live)
        expired = min(self.due - own_due, free - own_due - own_live - settled)
        return self.balance - own_due - own_live - settled - expired, held


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
class PaidFrom:
    """Points a payment (a redeem or a capture) took from one lot, and when; with what a refund needs to give
    them back: the lot's entry, order and end."""

    lot_id: uuid.UUID
    entry_id: uuid.UUID
    order_ref: str | None
    expires_at: datetime | None
    spent_at: datetime
    points: int

    def end_on_return(self, now: datetime) -> datetime | None:
        """When these points end if given back at `now`: they keep the time they had left when spent (their
        clock stops while they are spent), so a refund never makes points last longer than they would have
        unspent. Points spent already past their end (a capture takes those last) come back ended."""
        return None if self.expires_at is None else self.expires_at + max(now - self.spent_at, timedelta(0))


def plan_giving_back(
    paid: Sequence[PaidFrom], *, given_back_before: int, points: int
) -> tuple[list[tuple[PaidFrom, int]], int]:
    """Where `points` a refund gives back go, `paid` in the order the payment spent them: to lots like those,
    the last spent first, as if the payment had spent that many points fewer, after the `given_back_before`
    that earlier refunds of the order gave back. With them, the points that go to a fresh lot: those the
    payment's entry names no lot for (paid before entries named them)."""
    plan: list[tuple[PaidFrom, int]] = []
    skip, left = given_back_before, points
    for lot in reversed(paid):
        passed = min(skip, lot.points)
        skip -= passed
        moved = min(lot.points - passed, left)
        if moved > 0:
            plan.append((lot, moved))
            left -= moved
    return plan, left


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


def points_refund_shares(
    *,
    refund_points: int,
    points_redeemed: int,
    given_back_before: int,
    points_earned: int,
    taken_back_before: int,
) -> RefundShares:
    """Give back `refund_points` of the points an order redeemed, and take back what it earned in the same
    proportion (points given back ÷ points redeemed).

    Like `refund_shares`, the take-back is computed on the cumulative points given back and rounded down, then
    less what earlier refunds took back: any series of points refunds adds up to exactly one refund of the
    same total, and giving back everything the order redeemed takes back everything it earned. Raises if
    `refund_points` is more than is left to give back (the caller refuses that first).
    """
    left = points_redeemed - given_back_before
    if refund_points < 0 or refund_points > left:
        raise ValueError(f"{left} redeemed points are left to give back, not {refund_points}")
    if points_redeemed <= 0:
        return RefundShares(take_back=0, give_back=0)
    take_target = points_earned * (given_back_before + refund_points) // points_redeemed
    return RefundShares(take_back=max(take_target - taken_back_before, 0), give_back=refund_points)


def refunded_for_points(*, order_amount: int, points_redeemed: int, given_back: int) -> int:
    """The smallest refunded amount of an order of `order_amount` whose share of the redeemed points
    (`refund_shares`' rounding) is at least `given_back`: how far a refund by points moves the order's
    refunded amount, so that refunds by amount carry on from there and the two kinds add up to one order.
    """
    if points_redeemed <= 0 or order_amount <= 0:
        return 0
    return min(-(-given_back * order_amount // points_redeemed), order_amount)


def remaining_shares(
    *, points_earned: int, taken_back_before: int, points_redeemed: int, given_back_before: int
) -> RefundShares:
    """A full refund: everything the order earned and redeemed that earlier refunds did not move yet."""
    return RefundShares(
        take_back=max(points_earned - taken_back_before, 0),
        give_back=max(points_redeemed - given_back_before, 0),
    )
