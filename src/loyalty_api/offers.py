"""Offer kinds: what a benefit or a coupon gives, one properties model each. The discount kinds are also
what coupons carry.

How checkout applies offers is in checkout/quote.py; how earning applies a points multiplier is in
earning/calculator.py; the birthday job issues a birthday gift's coupon. A new kind is one class here, one
entry in the unions below, its evaluator, and its tests.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from loyalty_api.kinds import KIND_MODEL_CONFIG
from loyalty_api.money import DecimalText
from loyalty_api.text import FilledText

Percent = Annotated[Decimal, Field(gt=0, le=100, max_digits=6, decimal_places=3), DecimalText()]
Multiplier = Annotated[Decimal, Field(gt=1, le=100, max_digits=8, decimal_places=4), DecimalText()]
Code = Annotated[str, Field(min_length=1, max_length=64)]
# Money in the programme's currency, in minor units (fen): strict, so 10.0 is refused rather than rounded.
MinorAmount = Annotated[int, Field(strict=True, ge=1, le=10**12)]
Channel = Literal["store", "online"]


class BenefitProperties(BaseModel):
    model_config = KIND_MODEL_CONFIG

    kind: str


class CartConditions(BenefitProperties):
    """When a cart qualifies: a minimum subtotal (before any discount), a channel. `categories` narrows
    what the benefit applies to: only the cart's items in those categories (empty: the whole cart)."""

    min_subtotal: MinorAmount | None = Field(default=None, description="Minor units, before discounts.")
    categories: list[Code] = Field(default_factory=list, max_length=200)
    channels: list[Channel] = Field(default_factory=list, max_length=2)


class PercentDiscount(CartConditions):
    kind: Literal["percent_discount"] = "percent_discount"
    percent: Percent


class FixedDiscount(CartConditions):
    kind: Literal["fixed_discount"] = "fixed_discount"
    amount: MinorAmount = Field(description="Minor units of the programme's currency.")


class FreeShipping(CartConditions):
    kind: Literal["free_shipping"] = "free_shipping"


class FreeItem(CartConditions):
    """`quantity` units of `sku` for free, when the cart holds them."""

    kind: Literal["free_item"] = "free_item"
    sku: Code
    quantity: int = Field(default=1, ge=1, le=100)


class MemberDayPrice(CartConditions):
    """A percentage off on one day of the week (in the programme's time zone), e.g. Wednesdays 20 % off."""

    kind: Literal["member_day_price"] = "member_day_price"
    weekday: int = Field(ge=1, le=7, description="ISO weekday: 1 Monday … 7 Sunday")
    percent: Percent


class PointsMultiplier(BenefitProperties):
    """Earn points × `multiplier` on the base points of a purchase (on top of the tier's own multiplier)."""

    kind: Literal["points_multiplier"] = "points_multiplier"
    multiplier: Multiplier
    channels: list[Channel] = Field(default_factory=list, max_length=2)
    min_subtotal: MinorAmount | None = None


CouponOffer = Annotated[
    PercentDiscount | FixedDiscount | FreeShipping | FreeItem, Field(discriminator="kind")
]
CouponKind = Literal["percent_discount", "fixed_discount", "free_shipping", "free_item"]
COUPON_OFFER_ADAPTER: TypeAdapter[CartConditions] = TypeAdapter(CouponOffer)


class BirthdayGift(BenefitProperties):
    """The birthday job gives the member a coupon on their birthday, once a year."""

    kind: Literal["birthday_gift"] = "birthday_gift"
    coupon_name: FilledText = Field(max_length=100)
    coupon: CouponOffer
    valid_days: int = Field(default=30, ge=1, le=366, description="The coupon is valid this many days.")


class PriorityService(BenefitProperties):
    kind: Literal["priority_service"] = "priority_service"
    description: FilledText = Field(max_length=500)


AnyBenefitProperties = Annotated[
    PercentDiscount
    | FixedDiscount
    | FreeShipping
    | FreeItem
    | MemberDayPrice
    | PointsMultiplier
    | BirthdayGift
    | PriorityService,
    Field(discriminator="kind"),
]
BenefitKind = Literal[
    "percent_discount",
    "fixed_discount",
    "free_shipping",
    "free_item",
    "member_day_price",
    "points_multiplier",
    "birthday_gift",
    "priority_service",
]
PROPERTIES_ADAPTER: TypeAdapter[BenefitProperties] = TypeAdapter(AnyBenefitProperties)
BENEFIT_KINDS = (
    PercentDiscount,
    FixedDiscount,
    FreeShipping,
    FreeItem,
    MemberDayPrice,
    PointsMultiplier,
    BirthdayGift,
    PriorityService,
)
