from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loyalty_api.checkout.quote import Cart, CartItem
from loyalty_api.http.schemas import MoneyBody, MoneyRead, ReadModel, TierRef
from loyalty_api.money import MOST_POINTS_AT_ONCE, Money

Code = Annotated[str, Field(min_length=1, max_length=64)]
CouponCode = Annotated[str, Field(min_length=1, max_length=64)]
PointsToUse = Annotated[int, Field(strict=True, ge=0, le=MOST_POINTS_AT_ONCE)]
MAX_COUPONS = 10

# The quote's contract for people, shown by OpenAPI and GraphQL alike.
QUOTE_DESCRIPTION = """
Every discount the member gets for this cart, where each comes from, the points they may use and what those
are worth, and the total after. **Read-only**: it locks nothing and changes nothing (coupons are not used,
points not held), so it may be called as often as the cart changes; it ignores `Idempotency-Key`. Keys with
the scopes `pos`, `ecommerce` or `admin` may call it.

All money is in the programme's currency, in minor units. What the subtotal has beyond the items is an
unitemized remainder (no sku, no category).

**Order** — each step works on what is left to pay of each line after the steps before it:

1. Line prices: **free items** first (the offer's quantity of that sku free at its unit price, cheapest
   units first, skipping units priced 0, which are free already; never more units than the cart holds; an
   offer whose sku is not in the cart does not apply), then **member-day prices** on their weekday (in the
   programme's time zone).
2. **Percent discounts**: benefits before coupons, then larger percent first, then by id (coupons: by code).
   Each applies to what is left, so two 10 % discounts give 19 %.
3. **Fixed discounts**: benefits before coupons, then larger amount first. Each gives at most what is left
   of its lines: goods never go below zero, and the line shows the amount actually given.
4. Every discount is **rounded down** to whole minor units. A unit the rounding leaves to place goes by the
   lines' sku, category and price, never by their order in `items`, and units of one sku, category and price
   count as one line however they are listed: the same cart listed otherwise costs the same.
5. **Shipping** is separate: free shipping takes the whole shipping amount off; nothing else touches it.
6. **Points** last, on the goods after discounts (never on shipping): at most the available points, at most
   the programme's maximum share, none below its minimum redemption; their value is rounded down.
7. `total = goods_total − points.applied_value + shipping_total`.

Conditions: `min_subtotal` is compared with the subtotal before any discount; `channels` needs the request's
`channel`; `categories` narrows a discount to those items (free shipping with categories needs such an
item in the cart). Benefits that do not apply are left out. Coupons that cannot be applied are listed in
`coupons_rejected` with a reason, never refused: another member's coupon is `not_found`, like an unknown
code, and a coupon that would give nothing is `conditions_not_met`, so it is not spent for nothing: also one
that gives something at its step when the discounts after it would take the goods as low without it (10 %
off, then 50 yuan off a 40-yuan cart: the 10 % is not applied).
"""


class CartItemBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Code
    category: Code | None = None
    quantity: int = Field(strict=True, ge=1, le=100_000)
    unit_price: MoneyBody

    def item(self) -> CartItem:
        return CartItem(
            sku=self.sku, category=self.category, quantity=self.quantity, unit_price=self.unit_price.money()
        )


class CartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subtotal: MoneyBody = Field(
        description="The goods before any discount, without shipping. What it has beyond the items is an "
        "unitemized remainder (no sku, no category)."
    )
    shipping: MoneyBody | None = Field(default=None, description="Default: no shipping (0).")
    items: list[CartItemBody] = Field(
        default_factory=list,
        max_length=500,
        description="quantity × unit_price summed must not exceed the subtotal.",
    )

    def cart(self) -> Cart:
        subtotal = self.subtotal.money()
        shipping = Money(0, subtotal.currency) if self.shipping is None else self.shipping.money()
        return Cart(subtotal=subtotal, shipping=shipping, items=[item.item() for item in self.items])


class QuoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_id: uuid.UUID
    cart: CartBody
    coupon_codes: list[CouponCode] = Field(
        default_factory=list,
        max_length=MAX_COUPONS,
        description="The member's coupons to apply (distinct).",
        json_schema_extra={"uniqueItems": True},  # what `_distinct` checks
    )
    points_to_use: PointsToUse | None = Field(
        default=None,
        description="Points the member wants to pay with; the quote applies as many as the rules allow. "
        "Leave out to see only how many may be used.",
    )
    channel: Literal["store", "online"] | None = Field(
        default=None, description="Where the purchase happens; offers limited to a channel need it."
    )

    @field_validator("coupon_codes")
    @classmethod
    def _distinct(cls, codes: list[str]) -> list[str]:
        if len(set(codes)) != len(codes):
            raise ValueError("must not name a coupon twice")
        return codes


class DiscountRead(ReadModel):
    source: str = Field(
        description="Where the discount comes from: `tier`, `plan`, `partner` (a partner's joint offer) or "
        "`coupon`"
    )
    source_ref: str = Field(
        description="The tier's, plan's or partner's code, or the coupon's code as the request named it"
    )
    source_name: str
    benefit_id: uuid.UUID | None = Field(description="The benefit given; null for a coupon")
    kind: str = Field(
        description="`member_day_price`, `free_item`, `percent_discount`, `fixed_discount` or `free_shipping`"
    )
    name: str
    amount: MoneyRead = Field(description="What the discount actually takes off")
    applies_to: Literal["goods", "shipping"]


class CouponRejectionRead(ReadModel):
    code: str = Field(description="As the request named it")
    reason: Literal["not_found", "used", "expired", "not_yet_valid", "conditions_not_met"] = Field(
        description="`not_found` also for another member's coupon; `conditions_not_met` also when the coupon "
        "would give nothing (nothing left to discount, shipping already free, or the other discounts would "
        "take the goods as low without it), so it is not spent for nothing"
    )
    detail: str = Field(description="For people")


class PerkRead(ReadModel):
    name: str
    description: str
    source: str
    source_ref: str
    source_name: str
    benefit_id: uuid.UUID | None


class PointsQuoteRead(ReadModel):
    available: int = Field(description="The member's available points (balance − held)")
    max_usable: int = Field(
        description="At most `available`, at most the programme's maximum share of the goods after "
        "discounts (shipping excluded), at most 1000000000 (the most one hold or redeem takes), and 0 when "
        "that is below the programme's minimum redemption"
    )
    max_value: MoneyRead
    applied: int = Field(description="Of `points_to_use`, the points the total counts (0 when not asked)")
    applied_value: MoneyRead
    capped_by: Literal["balance", "share", "minimum", "none"] = Field(
        description="Why `applied` is less than `points_to_use`: `none` when it is not"
    )


class QuoteRead(ReadModel):
    member_id: uuid.UUID
    tier: TierRef | None
    currency: str
    subtotal: MoneyRead
    shipping: MoneyRead
    discounts: list[DiscountRead] = Field(description="In the order they were applied")
    coupons_applied: list[str]
    coupons_rejected: list[CouponRejectionRead]
    perks: list[PerkRead] = Field(description="Benefits that are not a price, such as priority service")
    goods_total: MoneyRead = Field(description="The goods after discounts")
    shipping_total: MoneyRead = Field(description="Shipping after discounts")
    points: PointsQuoteRead
    total: MoneyRead = Field(description="goods_total − points.applied_value + shipping_total")
