"""The checkout quote: what a member pays for a cart, with every discount and its source. Reads only.

It gathers the member's benefits, the coupons they name, their available points and the programme's rules,
then prices the cart with checkout/quote.py (whose docstring gives the order discounts apply in). It locks
nothing and writes nothing: no holds are released and no lots expire here, yet `available` counts them as
the hold that follows the quote will (points/ledger.StoredAccount.as_a_spend_finds).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from loyalty_api.benefits.standing import EffectiveBenefit, standing
from loyalty_api.checkout.quote import (
    COUPON,
    AppliedDiscount,
    Cart,
    Offer,
    Perk,
    PointsQuote,
    RedeemTerms,
    check_cart,
    price,
)
from loyalty_api.checkout.repository import CheckoutRepository
from loyalty_api.clock import format_instant
from loyalty_api.coupons.service import CouponView, coupon_state, coupons_for_checkout
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.members.errors import MemberNotActive, MemberNotFound
from loyalty_api.money import Money
from loyalty_api.points.ledger import StoredAccount
from loyalty_api.program.service import get_program
from loyalty_api.tiers.ladder import TierRef

RejectReason = Literal["not_found", "used", "expired", "not_yet_valid", "conditions_not_met"]


@dataclass(frozen=True, slots=True)
class CouponRejection:
    code: str  # as the request named it
    reason: RejectReason
    detail: str  # for people; `reason` is for programs


@dataclass(frozen=True, slots=True)
class Quote:
    member_id: uuid.UUID
    tier: TierRef | None
    currency: str
    subtotal: Money
    shipping: Money
    discounts: list[AppliedDiscount]
    coupons_applied: list[str]
    coupons_rejected: list[CouponRejection]
    perks: list[Perk]
    goods_total: Money
    shipping_total: Money
    points: PointsQuote
    total: Money


async def quote(
    uow: UnitOfWork,
    *,
    member_id: uuid.UUID,
    cart: Cart,
    coupon_codes: Sequence[str] = (),
    points_to_use: int | None = None,
    channel: str | None = None,
) -> Quote:
    """Price `cart` for the member. Coupons that cannot be applied are reported, not refused; coupon codes
    are echoed as the request named them. Raises CurrencyMismatch, CartItemsExceedSubtotal,
    MemberNotFound, MemberNotActive (a suspended or closed member can neither earn nor pay with points), or
    InvalidField when two codes name the same coupon."""
    program = await get_program(uow)
    check_cart(cart, program.currency)
    now = uow.clock.now()
    payer = await CheckoutRepository(uow.session).get_payer(member_id, now)
    if payer is None:
        raise MemberNotFound()
    if payer.status != "active":
        raise MemberNotActive(f"The member is {payer.status}")
    held = await standing(uow, member_id, payer)
    coupons = await coupons_for_checkout(uow, member_id=member_id, codes=coupon_codes) if coupon_codes else []
    offers = [_benefit_offer(benefit) for benefit in held.benefits]
    refused: dict[str, CouponRejection] = {}
    named: dict[str, str] = {}  # stored code → code as named
    for code, coupon in zip(coupon_codes, coupons, strict=True):
        if coupon is not None:
            if coupon.code in named:
                raise InvalidField("coupon_codes", f"{code!r} and {named[coupon.code]!r} are the same coupon")
            named[coupon.code] = code
        rejection = _rejection(code, coupon, now=now)
        if rejection is not None:
            refused[code] = rejection
            continue
        assert coupon is not None
        offers.append(
            Offer(
                source=COUPON,
                source_ref=code,
                source_name=coupon.name,
                benefit_id=None,
                name=coupon.name,
                properties=coupon.offer,
                coupon_code=coupon.code,
            )
        )

    pricing = price(
        cart,
        offers=offers,
        terms=RedeemTerms(
            currency=program.currency,
            point_value_minor=program.point_value_minor,
            min_redeem_points=program.min_redeem_points,
            max_redeem_share=program.max_redeem_share,
        ),
        available_points=_available(payer.account),
        points_to_use=points_to_use,
        channel=channel,
        weekday=now.astimezone(program.zone).isoweekday(),
    )
    for code, detail in pricing.coupons_unmet.items():
        refused[code] = CouponRejection(code=code, reason="conditions_not_met", detail=detail)
    return Quote(
        member_id=member_id,
        tier=None if held.tier is None else held.tier.ref,
        currency=program.currency,
        subtotal=cart.subtotal,
        shipping=cart.shipping,
        discounts=pricing.discounts,
        coupons_applied=pricing.coupons_applied,
        coupons_rejected=[refused[code] for code in coupon_codes if code in refused],
        perks=pricing.perks,
        goods_total=pricing.goods_total,
        shipping_total=pricing.shipping_total,
        points=pricing.points,
        total=pricing.total,
    )


def _benefit_offer(benefit: EffectiveBenefit) -> Offer:
    # A benefit given by several sources applies once; the first source names it.
    source = benefit.sources[0] if benefit.sources else None
    return Offer(
        source="benefit" if source is None else source.type,
        source_ref=str(benefit.id) if source is None else source.ref,
        source_name=benefit.name if source is None else source.name,
        benefit_id=benefit.id,
        name=benefit.name,
        properties=benefit.properties,
    )


def _rejection(code: str, coupon: CouponView | None, *, now: datetime) -> CouponRejection | None:
    if coupon is None:  # unknown, mistyped, or another member's: all look the same
        return CouponRejection(
            code=code, reason="not_found", detail="The member has no coupon with this code"
        )
    state = coupon_state(coupon, now)
    if state == "used":
        return CouponRejection(code=code, reason="used", detail="The coupon has been used")
    if state == "expired":
        return CouponRejection(
            code=code, reason="expired", detail=f"The coupon expired at {format_instant(coupon.valid_until)}"
        )
    if state == "not_yet_valid":
        return CouponRejection(
            code=code,
            reason="not_yet_valid",
            detail=f"The coupon is valid from {format_instant(coupon.valid_from)}",
        )
    return None


def _available(account: StoredAccount) -> int:
    """The points the member may pay with: what the hold after the quote will find (the quote settles
    nothing itself)."""
    balance, held = account.as_a_spend_finds()
    return balance - held
