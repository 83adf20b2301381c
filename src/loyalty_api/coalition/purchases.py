"""Coalition earning: a purchase at a partner earns in our programme, at the partner's rate, and its refund
takes the points back, as for a purchase at our own tills.

A partner's order is kept under the partner's code (`bookshop/R-1001`): `/` is in no order reference our own
tills may send, so a partner's orders never meet ours or another partner's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from loyalty_api.coalition.service import PartnerPoints, granted_points
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.members.repository import MemberRepository
from loyalty_api.money import Money, points_for
from loyalty_api.orders.models import Order
from loyalty_api.orders.repository import OrderRepository
from loyalty_api.partners.errors import LinkNotFound, PartnerEarnNotOffered, PartnerNotActive
from loyalty_api.partners.models import Partner, PartnerLink
from loyalty_api.partners.repository import PartnerRepository
from loyalty_api.partners.service import active_partner, bound_partner, is_linked, locked_partner_link
from loyalty_api.points.accounts import check_currency
from loyalty_api.points.errors import OrderAlreadyEarned, OrderNotFound
from loyalty_api.points.refunds import refund
from loyalty_api.points.service import earn_at_rate
from loyalty_api.program.service import get_program


def partner_order_ref(partner: Partner, order_ref: str) -> str:
    return f"{partner.code}/{order_ref}"


def _marks(partner: Partner, order_ref: str) -> dict[str, str]:
    """What a partner's ledger entries say of it, so the ledger alone explains every settlement figure."""
    return {"partner": partner.code, "partner_order_ref": order_ref}


@dataclass(frozen=True, slots=True)
class PartnerEarn:
    order_ref: str
    points_earned: int
    rate: Decimal
    points: PartnerPoints | None  # None unless the member granted `points`


async def earn_at_partner(
    uow: UnitOfWork,
    partner_id: uuid.UUID,
    ref: str,
    *,
    order_ref: str,
    amount: Money,
    actor: uuid.UUID | None = None,
) -> PartnerEarn:
    """Earn for the customer the partner linked as `ref`, for a purchase at the partner, once per order."""
    # The link is read behind the member's row, as the earn then locks it: an unlink or an erasure under way
    # commits first, and the partner earns nothing (and sees no balance) once the member withdrew consent.
    try:
        partner, link = await locked_partner_link(uow, partner_id, ref)
    except (LinkNotFound, PartnerNotActive):
        # A purchase sent again without a key (its answer lost) after the customer unlinked, their member was
        # erased or the partner was suspended: it earned, and the partner must not read it as earning nothing.
        if await _earned_already(uow, partner_id, ref, order_ref):
            raise OrderAlreadyEarned() from None
        raise
    if partner.earn_rate is None:
        # Its repeat, after the operator withdrew the rate: it earned, as above.
        if await _earned_already(uow, partner_id, ref, order_ref):
            raise OrderAlreadyEarned()
        raise PartnerEarnNotOffered()
    program = await get_program(uow)
    check_currency(program, amount)
    rate = partner.earn_rate
    earned = await earn_at_rate(
        uow,
        member_id=link.member_id,
        order_ref=partner_order_ref(partner, order_ref),
        amount=amount,
        points=points_for(amount, rate, program.rounding),
        rule=partner.name,
        partner_id=partner.id,
        partner_customer_ref=link.partner_customer_ref,
        details=_marks(partner, order_ref) | {"rate": str(rate)},
        actor=actor,
    )
    return PartnerEarn(
        order_ref=order_ref,
        points_earned=earned.points,
        rate=rate,
        # Not the account's balance the earn left: it still counts points past their end until the expiry
        # job runs. The partner sees what the joint view shows.
        points=await granted_points(uow, link),
    )


async def _earned_already(uow: UnitOfWork, partner_id: uuid.UUID, ref: str, order_ref: str) -> bool:
    """Whether the partner's order earned, under `ref` (or under a reference an erasure forgot, or one from
    before revision 0051, which kept none): the partner's own order number, in its own namespace."""
    partner = await bound_partner(uow, partner_id)
    order = await OrderRepository(uow.session).get_order(partner_order_ref(partner, order_ref))
    return order is not None and order.earned_at is not None and order.partner_customer_ref in (None, ref)


@dataclass(frozen=True, slots=True)
class PartnerRefund:
    order_ref: str
    refunded: Money | None
    points_reversed: int  # the purchase's points the refund reverses: the partner's own books say as much
    # How those points fell in the member's account (taken from the balance, spent already, expired already):
    # the member's points, None unless they let the partner see them (as `points`).
    points_taken_back: int | None
    shortfall: int | None
    already_expired: int | None
    points: PartnerPoints | None


async def _locked_link(
    uow: UnitOfWork, partner: Partner, ref: str, order: Order | None
) -> PartnerLink | None:
    """The partner's link of `ref` (None: none), read behind the lock on its member's row (taken before their
    account's, as every change takes them), as an earn reads it. The order's member, whose points the refund
    takes back, is locked with it: they differ when the partner gave `ref` to another customer since the
    purchase, and then the two rows are locked in ascending member order, as a transfer between the same two
    members locks them; the link's member first and the order's after deadlocked with such a transfer."""
    repo = PartnerRepository(uow.session)
    found = await repo.get_link(partner.id, ref)
    members = {row.member_id for row in (found, order) if row is not None}
    for member_id in sorted(members):
        await MemberRepository(uow.session).get_member(member_id, lock=True)
    return await repo.get_link(partner.id, ref)


async def refund_at_partner(
    uow: UnitOfWork,
    partner_id: uuid.UUID,
    ref: str,
    order_ref: str,
    *,
    amount: Money | None,
    full: bool,
    actor: uuid.UUID | None = None,
) -> PartnerRefund:
    """Refund a purchase at the partner (by `amount` or in `full`): the points it earned are taken back in
    proportion. An order that is not this customer's purchase at this partner does not exist for it. A
    customer who unlinked since is refunded by the reference the purchase was made under (below), and the
    partner is shown none of their points."""
    partner = await active_partner(uow, partner_id)
    ours = partner_order_ref(partner, order_ref)
    orders = OrderRepository(uow.session)
    order = await orders.get_order(ours)
    link = await _locked_link(uow, partner, ref, order)
    order = await orders.get_order(ours)
    if link is None:
        # The customer unlinked after the purchase (their consent to the joint view withdrawn), yet its return
        # must take back what it earned: earning here, unlinking and returning the goods kept the points, and
        # the settlement charged the partner for them. The order says under which reference it was made: under
        # any other, a mistyped order number would refund another former customer's purchase. (A purchase
        # from before revision 0051 whose customer was not linked then has none kept: its order
        # alone names it.) An order of a customer linked now, under another reference, is not the one `ref`
        # names either.
        if (
            order is None
            or order.partner_customer_ref not in (None, ref)
            or await is_linked(uow, partner.id, order.member_id)
        ):
            raise LinkNotFound()
    elif order is None or order.member_id != link.member_id:
        # `ref` names another customer now: the partner gave the reference again (a phone number passed on)
        # after the customer the purchase was made under unlinked. Theirs is still refunded by it, showing
        # none of their points nor the new customer's; any other order is not this customer's.
        if (
            order is None
            or order.partner_customer_ref != ref
            or await is_linked(uow, partner.id, order.member_id)
        ):
            raise OrderNotFound()
        link = None
    done = await refund(
        uow,
        order_ref=ours,
        amount=amount,
        full=full,
        actor=actor,
        partner_id=partner.id,
        details=_marks(partner, order_ref),
    )
    points = None if link is None else await granted_points(uow, link)
    # What the refund could take from the account and what the member had spent already is their balance to
    # the point (a shortfall means nothing was left): told only where the joint view shows the balance, never
    # to a partner the member did not grant `points`, nor once they unlinked. The share of the purchase's
    # points the refund reverses depends on the order alone.
    shown = points is not None
    return PartnerRefund(
        order_ref=order_ref,
        refunded=done.refunded,
        points_reversed=done.points_taken_back + done.shortfall + done.already_expired,
        points_taken_back=done.points_taken_back if shown else None,
        shortfall=done.shortfall if shown else None,
        already_expired=done.already_expired if shown else None,
        points=points,
    )
