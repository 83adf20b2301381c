"""Refunds: take back what an order earned and give back what it redeemed, in proportion."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from loyalty_api.db.uow import UnitOfWork
from loyalty_api.money import Money
from loyalty_api.points.accounts import (
    credit_lot,
    money_payload,
    record_entry,
    release_member_expired_holds,
    spend_lots,
)
from loyalty_api.points.errors import CurrencyMismatch, OrderNotFound, OrderTotalUnknown, RefundExceedsOrder
from loyalty_api.points.events import PointsRefunded
from loyalty_api.points.ledger import refund_shares
from loyalty_api.points.repository import OrderRepository, PointsAccountRepository
from loyalty_api.program.service import get_program
from loyalty_api.webhooks.outbox import emit_for_member


@dataclass(frozen=True, slots=True)
class RefundResult:
    order_ref: str
    member_id: uuid.UUID
    refunded: Money
    refunded_total: Money
    order_total: Money
    points_taken_back: int
    points_given_back: int
    shortfall: int
    balance: int
    available: int


async def refund(
    uow: UnitOfWork, *, order_ref: str, amount: Money, actor: uuid.UUID | None = None
) -> RefundResult:
    """Refund `amount` of the order.

    Points the member already spent cannot be taken back below zero (nor below what is on hold): what
    cannot be taken back is recorded as the order's shortfall and reported, and never tried again.
    """
    orders = OrderRepository(uow.session)
    order = await orders.get_order(order_ref)
    if order is None:
        raise OrderNotFound()
    accounts = PointsAccountRepository(uow.session)
    now = uow.clock.now()
    locked = await accounts.lock(order.member_id, now)
    assert locked is not None
    # A hold past its time still counts in `held` until the job releases it: release it now, or the refund
    # would see those points as spent and take back too little.
    if await release_member_expired_holds(uow, order.member_id):
        locked = await accounts.lock(order.member_id, now)
        assert locked is not None
    order = await orders.get_order(order_ref)  # read again behind the member's lock
    assert order is not None
    if order.amount_minor is None or order.currency is None:
        raise OrderTotalUnknown()
    if amount.currency != order.currency:
        raise CurrencyMismatch(f"The order was paid in {order.currency}")
    left = order.amount_minor - order.refunded_minor
    if amount.amount_minor > left:
        raise RefundExceedsOrder(f"Only {left} of the order is left to refund", refundable=left)

    shares = refund_shares(
        order_amount=order.amount_minor,
        refunded_before=order.refunded_minor,
        refund=amount.amount_minor,
        points_earned=order.points_earned,
        taken_back_before=order.points_taken_back + order.points_shortfall,
        points_redeemed=order.points_redeemed,
        given_back_before=order.points_given_back,
    )
    give = shares.give_back
    take = max(min(shares.take_back, locked.balance + give - locked.held), 0)
    shortfall = shares.take_back - take
    state = await accounts.change(order.member_id, now=now, balance=give - take)
    assert state is not None

    order.refunded_minor += amount.amount_minor
    order.points_taken_back += take
    order.points_given_back += give
    order.points_shortfall += shortfall
    order.updated_at = now
    refunded_total = Money(order.refunded_minor, order.currency)
    entry_id = await record_entry(
        uow,
        member_id=order.member_id,
        type="refund",
        amount=give - take,
        state=state,
        order_ref=order_ref,
        details={
            "refunded": money_payload(amount).model_dump(),
            "taken_back": take,
            "given_back": give,
            "shortfall": shortfall,
        },
        actor=actor,
    )
    await credit_lot(
        uow,
        await get_program(uow),
        member_id=order.member_id,
        entry_id=entry_id,
        points=give,
        order_ref=order_ref,
    )
    await spend_lots(uow, order.member_id, take, order_ref_first=order_ref)
    await emit_for_member(
        uow,
        PointsRefunded(
            member_id=order.member_id,
            order_ref=order_ref,
            refunded=money_payload(amount),
            taken_back=take,
            given_back=give,
            shortfall=shortfall,
            balance=state.balance,
        ),
        order.member_id,
    )
    return RefundResult(
        order_ref=order_ref,
        member_id=order.member_id,
        refunded=amount,
        refunded_total=refunded_total,
        order_total=Money(order.amount_minor, order.currency),
        points_taken_back=take,
        points_given_back=give,
        shortfall=shortfall,
        balance=state.balance,
        available=state.available,
    )
