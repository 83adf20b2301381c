"""Refunds: take back what an order earned and give back what it redeemed, in proportion.

An order is refunded by `amount` (a share of its total, which must be known), by `points` (redeemed points to
give back; what it earned is taken back in the same proportion) or in `full`. The order keeps, cumulatively,
the money refunded and the points moved; each refund works out the cumulative targets and moves what earlier
refunds did not, so refunds of either kind add up to one full refund and never move more.

Which points a refund is owed, one rule wherever points move (here, and in accounts: a hold's release or
run-out, the rest of a part capture, an expiry, points a failed exchange gives back): an order's refund is
owed every point the order earned that did not expire, including points past their end that a hold spares
(they are still on the member's books: the checkout may yet spend them). So:

- The take-back takes the order's own points first, past their end or not. Points of the order that were spent
  (a redeem, a capture, of points past their end too) it takes from the member's other points still good, and
  records per lot what stands in for them (point_stand_ins); what it cannot take, because the member has no
  such points available, is the order's shortfall.
- Whenever the order's own points are on the books again (given back by the refund of the order they paid,
  good or ended; freed by a hold; reaching their end) they pay what the order owes before anything else does:
  its shortfall, then its stand-ins, which go back to lots like the ones they came from, with their ends
  (accounts.pay_with_own_points). Only then do the rest expire (past their end) or settle what other orders
  owe (still good).
- Points past their end never settle another order's shortfall: without the hold that spared them they would
  have expired, and that order's refund could not have taken them.

So whichever comes first, a refund or the return of the points it is owed, the member ends with the same
points: the refund that comes first takes, as stand-ins or shortfall, what it would have found later
(tests/points/test_refund_orderings.py sweeps the orderings).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from loyalty_api.db.uow import UnitOfWork
from loyalty_api.members.repository import MemberRepository
from loyalty_api.money import Money
from loyalty_api.orders.models import Order
from loyalty_api.orders.repository import OrderRepository
from loyalty_api.outbox.service import emit_for_member
from loyalty_api.points.accounts import (
    GivenBackLot,
    credit_given_back,
    expire_due_points,
    expire_let_go,
    money_payload,
    plan_giving_back_spent,
    record_entry,
    release_member_expired_holds,
    settle_with_points_back,
    take_for_order,
)
from loyalty_api.points.errors import CurrencyMismatch, OrderNotFound, OrderTotalUnknown, RefundExceedsOrder
from loyalty_api.points.events import PointsRefunded
from loyalty_api.points.ledger import (
    LotBalance,
    RefundKind,
    RefundShares,
    plan_spending,
    points_refund_shares,
    refund_shares,
    refunded_for_points,
    remaining_shares,
)
from loyalty_api.points.referrals import void_if_returned
from loyalty_api.points.repository import LedgerRepository, LotRepository, PointsAccountRepository
from loyalty_api.program.service import get_program


@dataclass(frozen=True, slots=True)
class RefundResult:
    order_ref: str
    member_id: uuid.UUID
    refunded_by: RefundKind
    refunded: Money | None  # None while the order's total is not known
    refunded_total: Money | None
    order_total: Money | None
    points_taken_back: int
    points_given_back: int
    shortfall: int
    shortfall_settled: int
    already_expired: int
    points_refundable: int
    referral_taken_back: int
    balance: int
    available: int


async def _order_not_erased(uow: UnitOfWork, order_ref: str) -> Order | None:
    """The order, unless its member was erased: an erased member is not there, nor is what was theirs (their
    holds, subscriptions and coupons are not found either). A refund would change the anonymous account and
    answer with the erased member's id and balance."""
    order = await OrderRepository(uow.session).get_order(order_ref)
    if order is None or await MemberRepository(uow.session).get_points_holder(order.member_id) is None:
        return None
    return order


@dataclass(frozen=True, slots=True)
class _Plan:
    money: int  # minor units of the order's total this refund covers; 0 while the total is not known
    shares: RefundShares


def _total(order: Order) -> Money | None:
    """The order's total, once an earn, a redeem or a capture gave it (currency and amount come together)."""
    if order.amount_minor is None or order.currency is None:
        return None
    return Money(order.amount_minor, order.currency)


def _plan(order: Order, *, amount: Money | None, points: int | None) -> _Plan:
    """What a refund by `amount`, by `points` or (neither) in full moves; refused when it cannot be done."""
    total = _total(order)
    money_left = None if total is None else total.amount_minor - order.refunded_minor
    points_left = order.points_redeemed - order.points_given_back
    # What earlier refunds did not take back because it had expired counts in points_taken_back.
    taken_back_before = order.points_taken_back + order.points_shortfall
    if amount is not None:
        if total is None or money_left is None:
            raise OrderTotalUnknown(
                "The order's total is not known, so an amount cannot be measured against it. Refund it by "
                f"points (up to {points_left}) or with full: true; to refund orders by amount, send "
                "order_total with the redeem or the capture.",
                refund_with=["points", "full"],
                refundable_points=points_left,
            )
        if amount.currency != total.currency:
            raise CurrencyMismatch(f"The order was paid in {total.currency}")
        if amount.amount_minor > money_left:
            raise RefundExceedsOrder(
                f"Only {money_left} of the order's {total.amount_minor} {total.currency} (minor units) is "
                "left to refund",
                refundable=money_left,
            )
        return _Plan(
            money=amount.amount_minor,
            shares=refund_shares(
                order_amount=total.amount_minor,
                refunded_before=order.refunded_minor,
                refund=amount.amount_minor,
                points_earned=order.points_earned,
                taken_back_before=taken_back_before,
                points_redeemed=order.points_redeemed,
                given_back_before=order.points_given_back,
            ),
        )
    if points is not None:
        if points > points_left:
            raise RefundExceedsOrder(
                f"Only {points_left} of the points this order redeemed are left to give back"
                if order.points_redeemed
                else "This order redeemed no points: refund it by amount or with full: true",
                refundable_points=points_left,
            )
        money = 0
        if total is not None:
            # The refunded amount moves to the share these points are of what the order redeemed (never back).
            reached = refunded_for_points(
                order_amount=total.amount_minor,
                points_redeemed=order.points_redeemed,
                given_back=order.points_given_back + points,
            )
            money = max(reached - order.refunded_minor, 0)
        return _Plan(
            money=money,
            shares=points_refund_shares(
                refund_points=points,
                points_redeemed=order.points_redeemed,
                given_back_before=order.points_given_back,
                points_earned=order.points_earned,
                taken_back_before=taken_back_before,
            ),
        )
    plan = _Plan(
        money=money_left or 0,
        shares=remaining_shares(
            points_earned=order.points_earned,
            taken_back_before=taken_back_before,
            points_redeemed=order.points_redeemed,
            given_back_before=order.points_given_back,
        ),
    )
    if not (plan.money or plan.shares.take_back or plan.shares.give_back):
        raise RefundExceedsOrder("Nothing is left to refund on this order", refundable=0, refundable_points=0)
    return plan


async def _take_back(
    uow: UnitOfWork, order: Order, take: int, returned: list[GivenBackLot]
) -> dict[uuid.UUID, int]:
    """Take `take` points back for the order: first its own points that came back ended (a hold on it spared
    them past their end, its capture spent them: unspent, they would have expired as the order's), then the
    member's lots, the order's own first (take_for_order). What was taken from each lot."""
    own_ended = [lot for lot in returned if lot.ended and lot.like.order_ref == order.order_ref]
    own = plan_spending(
        [LotBalance(lot.lot_id, lot.points) for lot in own_ended],
        min(take, sum(lot.points for lot in own_ended)),
    )
    await LotRepository(uow.session).take(order.member_id, own)
    taken = dict(own)
    rest = take - sum(taken.values())
    if rest > 0:
        for lot_id, points in await take_for_order(
            uow, order.member_id, order.order_ref, rest, others_ended=True
        ):
            taken[lot_id] = taken.get(lot_id, 0) + points
    return taken


async def refund(
    uow: UnitOfWork,
    *,
    order_ref: str,
    amount: Money | None = None,
    points: int | None = None,
    full: bool = False,
    actor: uuid.UUID | None = None,
    partner_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> RefundResult:
    """Refund the order by `amount` of its total, by `points` it redeemed, or in `full` (exactly one).

    Points the member already spent cannot be taken back below zero (nor below what is on hold): what
    cannot be taken back is recorded as the order's shortfall and reported. Points a later refund gives back
    pay what the order that earned them owes first (its shortfall, its stand-ins: see the module's rule), and
    then, still good, the member's other shortfalls, oldest order first (`shortfall_settled`), so returning
    two orders (one earned the points the other spent) leaves the same points in either order. A refund of a
    purchase at a partner is marked with `partner_id` and `details`, as its earn was.
    """
    if (amount is not None) + (points is not None) + full != 1:
        raise ValueError("refund by exactly one of amount, points or full")
    refunded_by: RefundKind = "amount" if amount is not None else "points" if points is not None else "full"
    order = await _order_not_erased(uow, order_ref)
    if order is None:
        raise OrderNotFound()
    accounts = PointsAccountRepository(uow.session)
    # Holds past their time and lots past their end are settled first, as the jobs would: the refund sees
    # the points a spend would, and what the order earned that has expired is known, whether or not the
    # jobs have run. Judged by the time read behind the member's lock: points that ended while this waited
    # for it have expired, and are not taken back again.
    locked = await accounts.lock(order.member_id, uow.clock.now())
    assert locked is not None
    now = uow.clock.now()
    changed = await release_member_expired_holds(uow, order.member_id)
    if await LotRepository(uow.session).exists_due_lot(order.member_id, now):
        changed += await expire_due_points(uow, order.member_id)
    if changed:
        locked = await accounts.lock(order.member_id, now)
        assert locked is not None
    order = await _order_not_erased(uow, order_ref)  # read again behind the member's lock
    if order is None:  # its member was erased while this waited for the lock
        raise OrderNotFound()
    plan = _plan(order, amount=amount, points=points)
    program = await get_program(uow)

    give = plan.shares.give_back
    # Points of the order that expired are gone already: taking them back again would take other points.
    # (Read only when the refund takes anything back: one that only gives redeemed points back skips it.)
    already_expired = 0
    if plan.shares.take_back > 0:
        ledger = LedgerRepository(uow.session)
        expired = await ledger.expired_of_earn(order.member_id, order_ref)
        expired -= await ledger.already_expired_of_refunds(order_ref)
        already_expired = min(plan.shares.take_back, max(expired, 0))
    # Read before this refund counts as given back: the plan skips what earlier refunds gave back.
    giving = await plan_giving_back_spent(
        uow,
        order.member_id,
        await LedgerRepository(uow.session).spends_of(order.member_id, order_ref),
        points=give,
        given_back_before=order.points_given_back,
    )
    # Points that come back ended are no take-back's to count on, but those the order itself earned (a hold
    # on it spared them past their end, and its capture spent them): had they not been spent, they would
    # have expired as the order's, and nothing of them would be owed.
    ended, ended_own = giving.ended, giving.ended_of(order_ref)
    due = plan.shares.take_back - already_expired
    take = max(min(due, locked.balance + give - (ended - ended_own) - locked.held), 0)
    shortfall = due - take
    # The points the refund takes back were never earned: they leave what the member earned in their
    # lifetime too, whether taken now, already expired, or owed as a shortfall.
    state = await accounts.change(
        order.member_id, now=now, balance=give - take, lifetime=-plan.shares.take_back
    )
    assert state is not None

    order.refunded_minor += plan.money
    order.points_taken_back += take + already_expired
    order.points_given_back += give
    order.points_shortfall += shortfall
    order.updated_at = now
    order_total = _total(order)
    refunded = None if order_total is None else Money(plan.money, order_total.currency)
    refunded_total = None if order_total is None else Money(order.refunded_minor, order_total.currency)
    entry_id = await record_entry(
        uow,
        member_id=order.member_id,
        type="refund",
        amount=give - take,
        state=state,
        order_ref=order_ref,
        details={
            "refunded_by": refunded_by,
            "refunded": None if refunded is None else money_payload(refunded).model_dump(),
            "taken_back": take,
            "given_back": give,
            "shortfall": shortfall,
            **({"already_expired": already_expired} if already_expired else {}),
            **(details or {}),
        },
        actor=actor,
        partner_id=partner_id,
    )
    returned = await credit_given_back(
        uow, program, giving, member_id=order.member_id, entry_id=entry_id, order_ref=order_ref
    )
    taken = await _take_back(uow, order, take, returned)
    ended_taken = sum(taken.get(lot.lot_id, 0) for lot in returned if lot.ended)
    # What came back live, less what the take-back took of it (the order's own ended points paid part).
    live = give - ended - (take - ended_taken)
    # The orders whose points came back pay what they owe with them first. Then the live rest settles what
    # the member's other orders owe, as far as it is not needed in place of points past their end that a
    # hold spared: a hold keeps the points still good first, and those past their end it lets go expire.
    settled_total, state = await settle_with_points_back(
        uow,
        order.member_id,
        state,
        live=live,
        settled_by={"settled_by": order_ref},
        orders={lot.like.order_ref for lot in returned if lot.like.order_ref is not None},
        other_than=order_ref,
    )
    referral_taken_back, state = await void_if_returned(uow, program, order, state)
    await emit_for_member(
        uow,
        PointsRefunded(
            member_id=order.member_id,
            order_ref=order_ref,
            # The payload's `refunded` was always money: zero in the programme's currency without a total.
            refunded=money_payload(refunded or Money(0, program.currency)),
            taken_back=take,
            given_back=give,
            shortfall=shortfall,
            shortfall_settled=settled_total,
            already_expired=already_expired,
            balance=state.balance,
            refunded_by=refunded_by,
            order_total=None if order_total is None else money_payload(order_total),
        ),
        order.member_id,
    )
    # Points that came back ended, and lots past their end a hold spared that what came back now lets go,
    # expire as a read counts them.
    state = await expire_let_go(uow, order.member_id, state)
    return RefundResult(
        order_ref=order_ref,
        member_id=order.member_id,
        refunded_by=refunded_by,
        refunded=refunded,
        refunded_total=refunded_total,
        order_total=order_total,
        points_taken_back=take,
        points_given_back=give,
        shortfall=shortfall,
        shortfall_settled=settled_total,
        already_expired=already_expired,
        points_refundable=order.points_redeemed - order.points_given_back,
        referral_taken_back=referral_taken_back,
        balance=state.balance,
        available=state.available,
    )
