"""What a cart costs a member: the discounts they get, where each comes from, the points they may use, and
the total after. Pure: no I/O, no clock (the programme's local weekday is passed in).

The cart is a list of lines: its items, plus the unitemized remainder (what the subtotal has beyond the
items: no sku, no category). Every step works on what is *left to pay* of each line after the steps before
it, and the order is fixed:

1. Line prices.
   a. Free items, benefits before coupons (then by id / code): the offer's quantity of units of its sku
      are free at their unit price, cheapest units first (units priced 0 are free already and skipped),
      never more units than the cart holds. An offer whose sku is not in the cart is not applied.
   b. Member-day prices, on their weekday only (ISO weekday in the programme's time zone): percent off
      the eligible lines; larger percent first, then by id.
2. Percent discounts, benefits before coupons, then larger percent first, then by id (coupons: by code).
   Each takes its percent of what is left of its eligible lines, so two 10 % discounts give 19 %, not 20 %.
3. Fixed discounts, benefits before coupons, then larger amount first, then by id / code. Each gives at
   most what is left of its eligible lines: goods never go below zero, and the discount line shows the
   amount actually given.
4. Rounding: every discount is rounded down to whole minor units (the shop never gives more than the
   percentage says), then spread over its eligible lines in proportion to what is left of each, largest
   remainders taking the last units, so no line goes below zero and the shares add up exactly. Ties go by
   the lines' sku, category and unit price, never by the order the caller listed them in, and units of one
   sku, category and price are one line however they were listed: the same cart listed otherwise costs
   the same.
5. Shipping is separate: the first free-shipping offer whose conditions hold (benefits before coupons)
   takes the whole shipping amount off. Nothing else touches shipping.
6. Points, on the goods after discounts (never on shipping): at most the available points, at most
   floor(max_redeem_share × goods / point_value_minor), at most 10^9 (the most one hold or redeem takes),
   and none at all when that is below the programme's minimum redemption. The value of points is rounded
   down (money.value_of_points).
7. total = goods after discounts − value of the points applied + shipping after discounts.

Conditions (offers.CartConditions): `min_subtotal` is compared with the subtotal before any
discount; `channels` (when not empty) must list the request's channel; `categories` (when not empty)
narrows a discount to the items in those categories (the unitemized remainder has none), and a free-shipping
offer with categories needs at least one such item in the cart.

Benefits that do not apply are left out. A coupon that does not apply, or would give nothing (nothing left
to discount, shipping already free, or the discounts after it would take the goods and the shipping as low
without it), is reported with a reason instead of being applied, so that the shop does not spend it for
nothing. Points multipliers (earning only) and birthday gifts (the birthday job turns
them into coupons) play no part here; priority service is listed among the perks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from loyalty_api.checkout.errors import CartItemsExceedSubtotal
from loyalty_api.money import MOST_POINTS_AT_ONCE, Money, most_points_within_share, value_of_points
from loyalty_api.offers import (
    BenefitProperties,
    CartConditions,
    FixedDiscount,
    FreeItem,
    FreeShipping,
    MemberDayPrice,
    PercentDiscount,
    PriorityService,
)
from loyalty_api.points.errors import CurrencyMismatch

CappedBy = Literal["balance", "share", "minimum", "none"]
AppliesTo = Literal["goods", "shipping"]
COUPON = "coupon"


@dataclass(frozen=True, slots=True)
class CartItem:
    sku: str | None
    category: str | None
    quantity: int
    unit_price: Money


@dataclass(frozen=True, slots=True)
class Cart:
    subtotal: Money
    shipping: Money
    items: Sequence[CartItem] = ()


@dataclass(frozen=True, slots=True)
class Offer:
    """Something that may change the price: a benefit (from a tier or a plan) or a coupon.

    `source` is "tier", "plan", "partner" or "coupon"; `source_ref` the tier code or the coupon code;
    `benefit_id` is None for coupons."""

    source: str
    source_ref: str
    source_name: str
    benefit_id: uuid.UUID | None
    name: str
    properties: BenefitProperties

    @property
    def is_coupon(self) -> bool:
        return self.source == COUPON

    # A coupon's code as stored: coupons of equal terms apply in the order of their codes, however the caller
    # typed them (`source_ref` is the code as named, for the answer to echo).
    coupon_code: str | None = None

    def sort_id(self) -> str:
        return (self.coupon_code or self.source_ref) if self.benefit_id is None else str(self.benefit_id)


@dataclass(frozen=True, slots=True)
class RedeemTerms:
    """The programme's rules for paying with points."""

    currency: str
    point_value_minor: Decimal
    min_redeem_points: int
    max_redeem_share: Decimal


@dataclass(frozen=True, slots=True)
class AppliedDiscount:
    source: str
    source_ref: str
    source_name: str
    benefit_id: uuid.UUID | None
    kind: str
    name: str
    amount: Money
    applies_to: AppliesTo


@dataclass(frozen=True, slots=True)
class Perk:
    name: str
    description: str
    source: str
    source_ref: str
    source_name: str
    benefit_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class PointsQuote:
    available: int
    max_usable: int
    max_value: Money
    applied: int
    applied_value: Money
    capped_by: CappedBy


@dataclass(frozen=True, slots=True)
class Pricing:
    discounts: list[AppliedDiscount]
    coupons_applied: list[str]
    coupons_unmet: dict[str, str]  # coupon code → why it was not applied (for people, not programs)
    perks: list[Perk]
    goods_total: Money
    shipping_total: Money
    points: PointsQuote
    total: Money


@dataclass(slots=True)
class _Line:
    sku: str | None
    category: str | None
    quantity: int
    unit_price: int
    left: int  # what is still to pay for this line
    free_units: int = 0
    listed: int = 0  # what the line cost before any discount


@dataclass(slots=True)
class _Walk:
    """The state of one pricing: lines, discounts so far, coupons applied or not."""

    lines: list[_Line]
    currency: str
    discounts: list[AppliedDiscount] = field(default_factory=list)
    coupons_applied: list[str] = field(default_factory=list)
    coupons_unmet: dict[str, str] = field(default_factory=dict)

    def record(self, offer: Offer, amount: int, applies_to: AppliesTo, unmet: str) -> None:
        """Keep a discount that gave something; a coupon that gave nothing is reported with `unmet`."""
        if amount > 0:
            self.discounts.append(
                AppliedDiscount(
                    source=offer.source,
                    source_ref=offer.source_ref,
                    source_name=offer.source_name,
                    benefit_id=offer.benefit_id,
                    kind=offer.properties.kind,
                    name=offer.name,
                    amount=Money(amount, self.currency),
                    applies_to=applies_to,
                )
            )
            if offer.is_coupon:
                self.coupons_applied.append(offer.source_ref)
        elif offer.is_coupon:
            self.coupons_unmet[offer.source_ref] = unmet

    def refuse(self, offer: Offer, reason: str) -> None:
        if offer.is_coupon:
            self.coupons_unmet[offer.source_ref] = reason


def check_cart(cart: Cart, currency: str) -> None:
    """Every amount is in the programme's currency, and the items fit in the subtotal."""
    amounts = [cart.subtotal, cart.shipping, *(item.unit_price for item in cart.items)]
    for amount in amounts:
        if amount.currency != currency:
            raise CurrencyMismatch(f"Amounts must be in {currency}, not {amount.currency}")
    listed = sum(item.quantity * item.unit_price.amount_minor for item in cart.items)
    if listed > cart.subtotal.amount_minor:
        raise CartItemsExceedSubtotal(
            f"The items add up to {listed}, more than the subtotal of {cart.subtotal.amount_minor}",
            items_total=listed,
            subtotal=cart.subtotal.amount_minor,
        )


def price(
    cart: Cart,
    *,
    offers: Sequence[Offer],
    terms: RedeemTerms,
    available_points: int,
    points_to_use: int | None,
    channel: str | None,
    weekday: int,
) -> Pricing:
    """Price `cart` with `offers` in the order the module's docstring gives. `weekday` is today's ISO
    weekday in the programme's time zone. Raises CurrencyMismatch or CartItemsExceedSubtotal."""
    check_cart(cart, terms.currency)
    walk, shipping_left = _discounted(cart, offers, terms.currency, channel, weekday)
    # A coupon can give something at its own step and still buy nothing: a later discount would have taken
    # off what it took anyway (10 % off, then 50 yuan off a 40-yuan cart). Spent, it would be lost for
    # nothing, so each applied coupon, the last applied first, is left out when the goods and the shipping
    # cost the same without it. The coupons not applied stay out: one of them must not step in for it.
    # Only a later discount that leaves a line nothing to pay (a fixed discount larger than what was left, a
    # 100 % one, free items of every unit) can take off what the coupon took, so a cart whose lines all
    # still cost something is not priced again (rounding down may make up for a coupon of a few fen: not
    # looked for).
    unmet = walk.coupons_unmet
    if walk.coupons_applied and any(line.left == 0 < line.listed for line in walk.lines):
        kept = [offer for offer in offers if not offer.is_coupon or offer.source_ref in walk.coupons_applied]
        for code in reversed(walk.coupons_applied):
            fewer = [offer for offer in kept if not (offer.is_coupon and offer.source_ref == code)]
            without, shipping_without = _discounted(cart, fewer, terms.currency, channel, weekday)
            if _goods(without) == _goods(walk) and shipping_without == shipping_left:
                kept, walk = fewer, without
                unmet[code] = "the other discounts already take off everything it would"
    goods = _goods(walk)
    points = quote_points(goods=goods, available=available_points, terms=terms, points_to_use=points_to_use)
    return Pricing(
        discounts=walk.discounts,
        coupons_applied=walk.coupons_applied,
        coupons_unmet=unmet | walk.coupons_unmet,
        perks=_perks(offers),
        goods_total=Money(goods, terms.currency),
        shipping_total=Money(shipping_left, terms.currency),
        points=points,
        total=Money(goods - points.applied_value.amount_minor + shipping_left, terms.currency),
    )


def _goods(walk: _Walk) -> int:
    return sum(line.left for line in walk.lines)


def _discounted(
    cart: Cart, offers: Sequence[Offer], currency: str, channel: str | None, weekday: int
) -> tuple[_Walk, int]:
    """Steps 1 to 5 of the module's docstring: the walk over the lines, and the shipping left to pay."""
    walk = _Walk(lines=_lines(cart), currency=currency)

    def usable(offer: Offer) -> CartConditions | None:
        properties = offer.properties
        if not isinstance(properties, CartConditions):
            return None
        unmet = _unmet(properties, cart, channel, weekday)
        if unmet is not None:
            walk.refuse(offer, unmet)
            return None
        return properties

    for offer in _ordered(offers, FreeItem, key=lambda p: 0):
        free_item = usable(offer)
        if isinstance(free_item, FreeItem):
            _give_free_items(walk, offer, free_item)
    for kind in (MemberDayPrice, PercentDiscount):
        for offer in _ordered(offers, kind, key=_minus_percent):
            conditions = usable(offer)
            if conditions is not None:
                _percent_off(walk, offer, conditions)
    for offer in _ordered(offers, FixedDiscount, key=_minus_amount):
        conditions = usable(offer)
        if isinstance(conditions, FixedDiscount):
            _amount_off(walk, offer, conditions)

    shipping_left = cart.shipping.amount_minor
    for offer in _ordered(offers, FreeShipping, key=lambda p: 0):
        if usable(offer) is not None:
            unmet = (
                "shipping is already free" if cart.shipping.amount_minor else "there is no shipping to pay"
            )
            walk.record(offer, shipping_left, "shipping", unmet)
            shipping_left = 0
    return walk, shipping_left


def quote_points(*, goods: int, available: int, terms: RedeemTerms, points_to_use: int | None) -> PointsQuote:
    """How many points may pay for `goods` (minor units after discounts), and how many of those asked for
    are applied. `capped_by` says what held the applied points below the points asked for."""
    available = max(available, 0)
    by_share = most_points_within_share(goods, terms.max_redeem_share, terms.point_value_minor)
    limit: CappedBy = "balance" if available <= by_share else "share"
    # A hold or a redeem takes at most MOST_POINTS_AT_ONCE, and `points_to_use` is no more either, so that
    # cap never holds back points asked for and has no `capped_by` of its own.
    max_usable = min(available, by_share, MOST_POINTS_AT_ONCE)
    if 0 < max_usable < terms.min_redeem_points:
        max_usable, limit = 0, "minimum"
    applied = 0
    capped_by: CappedBy = "none"
    if points_to_use is not None and points_to_use > max_usable:
        applied, capped_by = max_usable, limit
    elif points_to_use is not None and 0 < points_to_use < terms.min_redeem_points:
        applied, capped_by = 0, "minimum"
    elif points_to_use is not None:
        applied = points_to_use
    return PointsQuote(
        available=available,
        max_usable=max_usable,
        max_value=value_of_points(max_usable, terms.point_value_minor, terms.currency),
        applied=applied,
        applied_value=value_of_points(applied, terms.point_value_minor, terms.currency),
        capped_by=capped_by,
    )


def _lines(cart: Cart) -> list[_Line]:
    """The cart's lines as the pricing sees them: units of one sku, category and unit price are one line,
    however many lines the caller listed them on, and the lines come in an order of their own. Where rounding
    leaves a unit to place (a discount's spare units, equal free units) it goes by that order, so the same
    cart listed otherwise, or a sku added twice rather than with quantity 2, costs the same."""
    # Keyed by what orders them (None, which does not compare with text, as "" marked apart).
    units: dict[tuple[str, bool, str, bool, int], _Line] = {}
    for item in cart.items:
        sku, category, unit_price = item.sku, item.category, item.unit_price.amount_minor
        key = (sku or "", sku is None, category or "", category is None, unit_price)
        line = units.get(key)
        amount = item.quantity * unit_price
        if line is None:
            units[key] = _Line(sku, category, item.quantity, unit_price, amount, listed=amount)
        else:
            line.quantity += item.quantity
            line.left += amount
            line.listed += amount
    lines = [units[key] for key in sorted(units)]
    remainder = cart.subtotal.amount_minor - sum(line.left for line in lines)
    lines.append(_Line(sku=None, category=None, quantity=0, unit_price=0, left=remainder, listed=remainder))
    return lines


def _ordered(
    offers: Sequence[Offer], kind: type[BenefitProperties], *, key: Callable[[BenefitProperties], object]
) -> list[Offer]:
    """Offers of one kind in the order they apply: benefits before coupons, then `key`, then id / code."""
    chosen = [offer for offer in offers if isinstance(offer.properties, kind)]
    return sorted(chosen, key=lambda o: (o.is_coupon, key(o.properties), o.sort_id()))


def _minus_percent(properties: BenefitProperties) -> Decimal:
    assert isinstance(properties, PercentDiscount | MemberDayPrice)
    return -properties.percent


def _minus_amount(properties: BenefitProperties) -> int:
    assert isinstance(properties, FixedDiscount)
    return -properties.amount


def _unmet(conditions: CartConditions, cart: Cart, channel: str | None, weekday: int) -> str | None:
    """Why the cart does not qualify, or None when it does."""
    if conditions.min_subtotal is not None and cart.subtotal.amount_minor < conditions.min_subtotal:
        return f"the subtotal is below the minimum of {conditions.min_subtotal}"
    if conditions.channels and channel not in conditions.channels:
        return f"only for the channels: {', '.join(conditions.channels)}"
    if isinstance(conditions, MemberDayPrice) and weekday != conditions.weekday:
        return f"only on ISO weekday {conditions.weekday}"
    if isinstance(conditions, FreeShipping) and conditions.categories:
        wanted = set(conditions.categories)
        if not any(item.category in wanted for item in cart.items):
            return f"the cart holds nothing in the categories: {', '.join(conditions.categories)}"
    return None


def _eligible(walk: _Walk, conditions: CartConditions) -> list[_Line]:
    if not conditions.categories:
        return walk.lines
    wanted = set(conditions.categories)
    return [line for line in walk.lines if line.category in wanted]


def _nothing_left(conditions: CartConditions) -> str:
    if conditions.categories:
        return f"nothing left to discount in the categories: {', '.join(conditions.categories)}"
    return "nothing left to discount"


def _give_free_items(walk: _Walk, offer: Offer, free_item: FreeItem) -> None:
    wanted = set(free_item.categories)
    lines = [
        line for line in walk.lines if line.sku == free_item.sku and (not wanted or line.category in wanted)
    ]
    units, given = free_item.quantity, 0
    for line in sorted(lines, key=lambda line: line.unit_price):  # stable: cheapest units, then _lines' order
        if line.unit_price == 0:
            # A unit that costs nothing (a sample, a gift) is free already: giving it would spend the offer on
            # nothing while the cart holds units of the sku that cost something.
            continue
        take = min(units, line.quantity - line.free_units)
        value = min(take * line.unit_price, line.left)
        line.free_units += take
        line.left -= value
        units -= take
        given += value
    unmet = (
        f"every unit of {free_item.sku} in the cart is already free"
        if lines
        else (f"{free_item.sku} is not in the cart")
    )
    walk.record(offer, given, "goods", unmet)


def _percent_off(walk: _Walk, offer: Offer, conditions: CartConditions) -> None:
    assert isinstance(conditions, PercentDiscount | MemberDayPrice)
    lines = _eligible(walk, conditions)
    base = sum(line.left for line in lines)
    amount = int((base * conditions.percent) // 100)  # exact, rounded down
    _spread(lines, amount)
    walk.record(offer, amount, "goods", _nothing_left(conditions))


def _amount_off(walk: _Walk, offer: Offer, conditions: FixedDiscount) -> None:
    lines = _eligible(walk, conditions)
    amount = min(conditions.amount, sum(line.left for line in lines))
    _spread(lines, amount)
    walk.record(offer, amount, "goods", _nothing_left(conditions))


def _spread(lines: Sequence[_Line], amount: int) -> None:
    """Take `amount` off `lines` in proportion to what is left of each (largest remainder method): every
    share is at most what is left of its line, and the shares add up to `amount` exactly."""
    total = sum(line.left for line in lines)
    assert 0 <= amount <= total
    if amount == 0:
        return
    shares = [amount * line.left // total for line in lines]
    short = amount - sum(shares)
    by_remainder = sorted(range(len(lines)), key=lambda i: (-(amount * lines[i].left % total), i))
    for i in by_remainder[:short]:
        shares[i] += 1
    for line, share in zip(lines, shares, strict=True):
        line.left -= share


def _perks(offers: Sequence[Offer]) -> list[Perk]:
    return [
        Perk(
            name=offer.name,
            description=offer.properties.description,
            source=offer.source,
            source_ref=offer.source_ref,
            source_name=offer.source_name,
            benefit_id=offer.benefit_id,
        )
        for offer in _ordered(offers, PriorityService, key=lambda p: 0)
        if isinstance(offer.properties, PriorityService)
    ]
