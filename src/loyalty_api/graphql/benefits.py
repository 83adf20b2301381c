"""A member's benefits in GraphQL: what they have now, with where each comes from and its settings.

`properties` is a union with one object type per benefit kind (offers.py), so a client reads a
discount's percent or a birthday gift's coupon with the types REST's `properties` has: money in the
programme's currency as Money, percents and multipliers as Decimal (a string, as REST sends them).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from loyalty_api import offers
from loyalty_api.benefits.standing import EffectiveBenefit
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.cost import assumed
from loyalty_api.graphql.enums import BenefitKindEnum
from loyalty_api.graphql.errors import require
from loyalty_api.graphql.money import Money
from loyalty_api.graphql.scopes import READERS
from loyalty_api.money import Money as MoneyValue
from loyalty_api.program.service import get_program


def _min_subtotal(p: offers.CartConditions | offers.PointsMultiplier, currency: str) -> Money | None:
    return (
        None
        if p.min_subtotal is None
        else Money.of(MoneyValue(amount_minor=p.min_subtotal, currency=currency))
    )


@strawberry.interface(description="When a cart qualifies for a discount, and what it applies to.")
class CartConditions:
    min_subtotal: Money | None = strawberry.field(description="The cart's subtotal before any discount.")
    categories: list[str] = strawberry.field(
        description="Applies only to the cart's items in these categories; empty: the whole cart."
    )
    channels: list[str] = strawberry.field(description="`store`, `online`; empty: both.")


@strawberry.type
class PercentDiscountProperties(CartConditions):
    percent: Decimal = strawberry.field(description="Percent off, e.g. `12.5`.")


@strawberry.type
class FixedDiscountProperties(CartConditions):
    amount: Money


@strawberry.type
class FreeShippingProperties(CartConditions):
    pass


@strawberry.type
class FreeItemProperties(CartConditions):
    sku: str
    quantity: int


@strawberry.type(description="A percentage off on one day of the week, in the programme's time zone.")
class MemberDayPriceProperties(CartConditions):
    weekday: int = strawberry.field(description="ISO weekday: 1 Monday … 7 Sunday")
    percent: Decimal


@strawberry.type
class PointsMultiplierProperties:
    multiplier: Decimal = strawberry.field(description="Base points of a purchase × this, e.g. `1.5`.")
    channels: list[str]
    min_subtotal: Money | None


CouponOffer = Annotated[
    PercentDiscountProperties | FixedDiscountProperties | FreeShippingProperties | FreeItemProperties,
    strawberry.union("CouponOffer", description="What a coupon gives: one type per coupon kind."),
]


@strawberry.type(description="A coupon the member gets on their birthday, once a year.")
class BirthdayGiftProperties:
    coupon_name: str
    coupon: CouponOffer
    valid_days: int


@strawberry.type
class PriorityServiceProperties:
    description: str


BenefitProperties = Annotated[
    PercentDiscountProperties
    | FixedDiscountProperties
    | FreeShippingProperties
    | FreeItemProperties
    | MemberDayPriceProperties
    | PointsMultiplierProperties
    | BirthdayGiftProperties
    | PriorityServiceProperties,
    strawberry.union("BenefitProperties", description="A benefit's settings: one type per benefit kind."),
]


def _conditions(p: offers.CartConditions, currency: str) -> dict[str, Any]:
    return {
        "min_subtotal": _min_subtotal(p, currency),
        "categories": list(p.categories),
        "channels": list(p.channels),
    }


def coupon_offer(p: offers.BenefitProperties, currency: str) -> CouponOffer:
    """A coupon kind's properties; `currency` is the programme's, which their amounts are in."""
    if isinstance(p, offers.PercentDiscount):
        return PercentDiscountProperties(percent=p.percent, **_conditions(p, currency))
    if isinstance(p, offers.FixedDiscount):
        return FixedDiscountProperties(
            amount=Money.of(MoneyValue(amount_minor=p.amount, currency=currency)), **_conditions(p, currency)
        )
    if isinstance(p, offers.FreeShipping):
        return FreeShippingProperties(**_conditions(p, currency))
    if isinstance(p, offers.FreeItem):
        return FreeItemProperties(sku=p.sku, quantity=p.quantity, **_conditions(p, currency))
    raise ValueError(f"{p.kind!r} is not a coupon kind")


def benefit_properties(p: offers.BenefitProperties, currency: str) -> BenefitProperties:
    if isinstance(p, offers.MemberDayPrice):
        return MemberDayPriceProperties(weekday=p.weekday, percent=p.percent, **_conditions(p, currency))
    if isinstance(p, offers.PointsMultiplier):
        return PointsMultiplierProperties(
            multiplier=p.multiplier, channels=list(p.channels), min_subtotal=_min_subtotal(p, currency)
        )
    if isinstance(p, offers.BirthdayGift):
        return BirthdayGiftProperties(
            coupon_name=p.coupon_name, coupon=coupon_offer(p.coupon, currency), valid_days=p.valid_days
        )
    if isinstance(p, offers.PriorityService):
        return PriorityServiceProperties(description=p.description)
    return coupon_offer(p, currency)


@strawberry.type
class BenefitSource:
    type: str = strawberry.field(description="tier or plan")
    ref: str = strawberry.field(description="The tier's or plan's code")
    name: str


@strawberry.type
class MemberBenefit:
    id: strawberry.ID
    name: str
    kind: str = strawberry.field(graphql_type=BenefitKindEnum)
    properties: BenefitProperties = strawberry.field(
        description="The benefit's settings, one type per `kind`: `... on PercentDiscountProperties "
        "{ percent }`. Money is in the programme's currency."
    )
    sources: list[BenefitSource] = strawberry.field(directives=[assumed(3)])

    @classmethod
    def of(cls, benefit: EffectiveBenefit, currency: str) -> MemberBenefit:
        return cls(
            id=strawberry.ID(str(benefit.id)),
            name=benefit.name,
            kind=benefit.properties.kind,
            properties=benefit_properties(benefit.properties, currency),
            sources=[BenefitSource(type=s.type, ref=s.ref, name=s.name) for s in benefit.sources],
        )


async def _benefits(root: Any, info: Info[GraphQLContext, None]) -> list[MemberBenefit]:
    require(info.context, *READERS)
    found = await info.context.loaders.benefits.load(uuid.UUID(str(root.id)))
    if found is None or not found.benefits:
        return []
    async with info.context.snapshot.read() as uow:
        currency = (await get_program(uow)).currency  # read once per request: the unit of work caches it
    return [MemberBenefit.of(b, currency) for b in found.benefits]


@strawberry.type
class MemberBenefitFields:
    """Member's benefit fields (Member inherits them)."""

    benefits: list[MemberBenefit] = strawberry.field(
        resolver=_benefits,
        description="The benefits in force now, each with its sources (tier, paid plans).",
        directives=[assumed(20)],
    )
