"""Holds: points reserved for a checkout, then captured, released, or left to expire."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.members.repository import PointsHolder
from loyalty_api.members.service import refuse_unless_found
from loyalty_api.money import Money
from loyalty_api.orders.repository import OrderRepository
from loyalty_api.outbox.service import emit_for_member
from loyalty_api.points.accounts import (
    check_minimum_redeem,
    check_order_total,
    debit_for_order,
    expire_let_go,
    lock_earner_for_order,
    lots_payload,
    order_refusal,
    raises_counted_spend,
    record_entry,
    refused_for_the_order,
    release,
    release_member_expired_holds,
    settle_released,
    spend_lots,
)
from loyalty_api.points.errors import (
    BelowMinimumRedeem,
    CaptureExceedsHold,
    HoldExists,
    HoldNotActive,
    HoldNotFound,
    OrderRefunded,
)
from loyalty_api.points.events import PointsHeld, PointsHoldCaptured
from loyalty_api.points.models import Hold
from loyalty_api.points.repository import HoldRepository, PointsAccountRepository
from loyalty_api.program.service import get_program
from loyalty_api.tiers import membership


@dataclass(frozen=True, slots=True)
class HoldView:
    id: uuid.UUID
    member_id: uuid.UUID
    order_ref: str
    points: int
    captured_points: int
    status: str
    created_at: datetime
    expires_at: datetime
    resolved_at: datetime | None
    balance: int | None = None
    available: int | None = None


def hold_status(hold: Hold, now: datetime) -> str:
    """Where the hold stands: one past its time is expired, although its row says active until the job
    (or the member's next spend) releases it."""
    return "expired" if hold.status == "active" and hold.expires_at <= now else hold.status


def hold_resolved_at(hold: Hold, now: datetime) -> datetime | None:
    """When the hold ended (None: it has not): one past its time ended then, whether or not the job has
    released it yet."""
    return hold.expires_at if hold.status == "active" and hold.expires_at <= now else hold.resolved_at


def _view(hold: Hold, now: datetime, *, balance: int | None = None, available: int | None = None) -> HoldView:
    return HoldView(
        id=hold.id,
        member_id=hold.member_id,
        order_ref=hold.order_ref,
        points=hold.points,
        captured_points=hold.captured_points,
        status=hold_status(hold, now),
        created_at=hold.created_at,
        expires_at=hold.expires_at,
        resolved_at=hold_resolved_at(hold, now),
        balance=balance,
        available=available,
    )


async def create_hold(
    uow: UnitOfWork,
    *,
    member_id: uuid.UUID,
    points: int,
    order_ref: str,
    ttl_seconds: int,
    actor: uuid.UUID | None = None,
) -> HoldView:
    """Reserve `points` for the order: a redemption to come, so the programme's minimum applies to it."""
    try:
        check_minimum_redeem(await get_program(uow), points)
    except BelowMinimumRedeem as refused:
        raise await refused_for_the_order(uow, member_id, order_ref, refused) from None
    # Locked, not only read: closing or erasing the member frees their holds behind the same lock, so no hold
    # made while that runs can outlive it.
    await lock_earner_for_order(uow, member_id, order_ref, HoldExists)
    state = await debit_for_order(uow, member_id, points, order_ref, hold=True)
    holds = HoldRepository(uow.session)
    now = uow.clock.now()
    # The order is this member's from now on: another member can neither earn on it nor share its refund. A
    # hold that ends uncaptured, on an order nothing else touched, frees the number again (accounts.release).
    orders = OrderRepository(uow.session)
    await orders.insert_order_if_new(order_ref, member_id, now)
    refusal = await order_refusal(uow, member_id, order_ref)
    if refusal is not None:
        raise refusal
    hold = Hold(
        member_id=member_id,
        order_ref=order_ref,
        points=points,
        captured_points=0,
        status="active",
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
        resolved_at=None,
    )
    await holds.insert_hold(hold)
    await record_entry(
        uow,
        member_id=member_id,
        type="hold",
        amount=0,
        held_change=points,
        state=state,
        order_ref=order_ref,
        hold_id=hold.id,
        actor=actor,
    )
    await emit_for_member(
        uow,
        PointsHeld(
            member_id=member_id,
            hold_id=hold.id,
            order_ref=order_ref,
            points=points,
            expires_at=hold.expires_at,
        ),
        member_id,
    )
    return _view(hold, uow.clock.now(), balance=state.balance, available=state.available)


async def _lock_active_hold(
    uow: UnitOfWork, hold_id: uuid.UUID, *, to_spend: bool = False
) -> tuple[Hold, PointsHolder | None]:
    """Lock the hold's member, then read the hold: every change to it happens behind that lock.

    With `to_spend` (a capture pays for the order with the points, as a redeem does) the member's own row is
    locked too and must be active, as a redeem's is (lock_earner): a suspension committed before the capture
    stops it, and none can commit while it runs. A release only frees points, whatever the member's status.
    The hold, and with `to_spend` the member as locked.
    """
    holds = HoldRepository(uow.session)
    hold = await holds.get_hold(hold_id)
    if hold is None:
        raise HoldNotFound()
    accounts = PointsAccountRepository(uow.session)
    found = await accounts.lock_with_member(hold.member_id) if to_spend else None
    if not to_spend:
        await accounts.lock(hold.member_id, uow.clock.now())
    hold = await holds.get_hold(hold_id)
    if hold is None:  # its member was erased while this waited for the lock
        raise HoldNotFound()
    status = hold_status(hold, uow.clock.now())
    if status != "active":  # a closed member's holds were released: that is what the caller learns
        raise HoldNotActive(f"The hold is {status}", hold_status=status)
    if not to_spend:
        return hold, None
    return hold, refuse_unless_found(None if found is None else found[0], must_be_active=True)


async def capture_hold(
    uow: UnitOfWork,
    hold_id: uuid.UUID,
    *,
    points: int | None = None,
    order_total: Money | None = None,
    actor: uuid.UUID | None = None,
) -> HoldView:
    """Spend the held points (or fewer: the rest is released) on the hold's order.

    `order_total`, as on a redeem, is the base refunds of the order are measured against: it replaces the
    cash amount an earn on the order gave as its total (the share is checked against it, the total kept). An
    order is paid with points once, so no other payment gave it a total already, and no refund happened
    (OrderRefunded below).
    """
    hold, member = await _lock_active_hold(uow, hold_id, to_spend=True)
    assert member is not None
    captured = hold.points if points is None else points
    if captured > hold.points:
        raise CaptureExceedsHold(f"The hold reserves {hold.points} points", held=hold.points)
    program = await get_program(uow)
    if captured < hold.points:
        # A whole hold passed the minimum when it was made (a later rule does not strand the order); a part
        # of it is a redemption of its own.
        check_minimum_redeem(program, captured)
    if order_total is not None:
        check_order_total(program, captured, order_total)
    order = await OrderRepository(uow.session).get_order(hold.order_ref)
    if order is not None and order.refunded:
        # Refunded while the hold lasted (by its earn): refunds are shares of what the order had, so points
        # paid now would be given back out of proportion. The hold stays, to be released.
        raise OrderRefunded(f"Order {hold.order_ref} was refunded: the hold can only be released")
    # Read before add_redeemed below replaces the order's total with `order_total`.
    raised = raises_counted_spend(order, hold.member_id, order_total)
    now = uow.clock.now()
    state = await PointsAccountRepository(uow.session).change(
        hold.member_id, now=now, balance=-captured, held=-hold.points
    )
    assert state is not None
    if not await HoldRepository(uow.session).resolve(hold, status="captured", captured=captured, now=now):
        raise HoldNotActive("The hold has just ended", hold_status="ended")
    # A read counts held points against the lots still good: those are spent, and any past their end are left
    # for the expiry, as a read before the capture showed.
    paid = await spend_lots(uow, hold.member_id, captured, due_last=True)
    await OrderRepository(uow.session).add_redeemed(
        hold.order_ref,
        hold.member_id,
        points=captured,
        total=None if order_total is None else (order_total.currency, order_total.amount_minor),
        now=now,
    )
    await record_entry(
        uow,
        member_id=hold.member_id,
        type="capture",
        amount=-captured,
        held_change=-hold.points,
        state=state,
        order_ref=hold.order_ref,
        hold_id=hold.id,
        # The lots that paid, for a refund to give the points back as they were (points/refunds.py).
        details={"released": hold.points - captured, "lots": lots_payload(paid)},
        actor=actor,
    )
    settled, state = await settle_released(uow, hold, hold.points - captured, state)
    await emit_for_member(
        uow,
        PointsHoldCaptured(
            member_id=hold.member_id,
            hold_id=hold.id,
            order_ref=hold.order_ref,
            points=captured,
            released=hold.points - captured,
            balance=state.balance,
            shortfall_settled=settled,
        ),
        hold.member_id,
    )
    if raised:
        # The earned order now counts its whole total for tiers: the member is judged as after an earn, in
        # this transaction, behind the member's row _lock_active_hold locked first (the earn's lock order).
        await membership.after_total_raised(uow, member)
    state = await expire_let_go(uow, hold.member_id, state)
    return _view(hold, uow.clock.now(), balance=state.balance, available=state.available)


async def release_hold(uow: UnitOfWork, hold_id: uuid.UUID, *, actor: uuid.UUID | None = None) -> HoldView:
    hold, _ = await _lock_active_hold(uow, hold_id)
    state = await release(uow, hold, reason="released", actor=actor)
    if state is None:
        raise HoldNotActive("The hold has just ended", hold_status="ended")
    state = await expire_let_go(uow, hold.member_id, state)
    return _view(hold, uow.clock.now(), balance=state.balance, available=state.available)


async def get_hold(uow: UnitOfWork, hold_id: uuid.UUID) -> HoldView:
    hold = await HoldRepository(uow.session).get_hold(hold_id)
    if hold is None:
        raise HoldNotFound()
    return _view(hold, uow.clock.now())


async def expire_holds(units: UnitsOfWork, *, batch: int = 200) -> int:
    """The job: release every hold past its time, each member in a unit of work of its own, claimed (their
    row and account locked unless someone holds either, see expiry.expire_points): workers share the
    members, and a member a till is changing now is left to that change, which frees their holds past their
    time itself, or to the next run.

    The holds are read a batch at a time, oldest first, until none is left: one run frees them all, however
    many checkouts were abandoned since the last (a run that took one batch left the rest 15 s per batch
    behind, with their `points.hold_released` and their orders' numbers)."""
    released = 0
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with units.read() as uow:
            page = await HoldRepository(uow.session).list_expired_active(uow.clock.now(), batch, after=after)
        for _, hold_id in page:
            async with units.begin() as uow:
                hold = await HoldRepository(uow.session).get_hold(hold_id)
                if hold is None or await PointsAccountRepository(uow.session).claim(hold.member_id) is None:
                    continue
                released += await release_member_expired_holds(uow, hold.member_id)
        if len(page) < batch:
            return released
        after = page[-1]
