"""The checkout pricing, without I/O: each kind of offer, stacking, order, rounding, points and edge cases."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from loyalty_api.checkout.errors import CartItemsExceedSubtotal
from loyalty_api.checkout.quote import (
    Cart,
    CartItem,
    Offer,
    Pricing,
    RedeemTerms,
    _Line,
    _spread,
    price,
)
from loyalty_api.money import Money
from loyalty_api.offers import (
    BenefitProperties,
    BirthdayGift,
    FixedDiscount,
    FreeItem,
    FreeShipping,
    MemberDayPrice,
    PercentDiscount,
    PointsMultiplier,
    PriorityService,
)
from loyalty_api.points.errors import CurrencyMismatch

TERMS = RedeemTerms(
    currency="CNY", point_value_minor=Decimal(1), min_redeem_points=1, max_redeem_share=Decimal(1)
)
MONDAY, WEDNESDAY = 1, 3
_ids = iter(range(1, 1_000_000))


def cny(amount: int) -> Money:
    return Money(amount, "CNY")


def item(sku: str, unit_price: int, quantity: int = 1, category: str | None = None) -> CartItem:
    return CartItem(sku=sku, category=category, quantity=quantity, unit_price=cny(unit_price))


def cart(*items: CartItem, subtotal: int | None = None, shipping: int = 0) -> Cart:
    listed = sum(i.quantity * i.unit_price.amount_minor for i in items)
    return Cart(subtotal=cny(listed if subtotal is None else subtotal), shipping=cny(shipping), items=items)


def benefit(properties: BenefitProperties, name: str | None = None, *, id: int | None = None) -> Offer:
    number = next(_ids) if id is None else id
    return Offer(
        source="tier",
        source_ref="gold",
        source_name="金卡",
        benefit_id=uuid.UUID(int=number),
        name=name or f"benefit {number}",
        properties=properties,
    )


def coupon(code: str, properties: BenefitProperties) -> Offer:
    return Offer(
        source="coupon",
        source_ref=code,
        source_name=f"coupon {code}",
        benefit_id=None,
        name=f"coupon {code}",
        properties=properties,
    )


def run(
    the_cart: Cart,
    *offers: Offer,
    available: int = 0,
    points_to_use: int | None = None,
    channel: str | None = None,
    weekday: int = MONDAY,
    terms: RedeemTerms = TERMS,
) -> Pricing:
    return price(
        the_cart,
        offers=offers,
        terms=terms,
        available_points=available,
        points_to_use=points_to_use,
        channel=channel,
        weekday=weekday,
    )


def amounts(pricing: Pricing) -> list[tuple[str, int]]:
    return [(d.name, d.amount.amount_minor) for d in pricing.discounts]


def percent(value: str, **conditions: Any) -> PercentDiscount:
    return PercentDiscount(percent=Decimal(value), **conditions)


def fixed(amount: int, **conditions: Any) -> FixedDiscount:
    return FixedDiscount(amount=amount, **conditions)


class TestNoOffers:
    def test_total_is_subtotal_plus_shipping(self) -> None:
        result = run(cart(item("A", 5_000, 2), shipping=800))
        assert result.discounts == []
        assert (result.goods_total, result.shipping_total, result.total) == (
            cny(10_000),
            cny(800),
            cny(10_800),
        )

    def test_empty_cart(self) -> None:
        result = run(
            cart(),
            benefit(percent("10")),
            coupon("C1", percent("10")),
            coupon("C2", fixed(100)),
            available=1_000,
            points_to_use=10,
        )
        assert result.discounts == []
        assert result.coupons_applied == []
        assert set(result.coupons_unmet) == {"C1", "C2"}
        assert result.total == cny(0)
        assert (result.points.max_usable, result.points.applied, result.points.capped_by) == (0, 0, "share")


class TestPercent:
    def test_percent_of_the_whole_cart(self) -> None:
        result = run(cart(item("A", 10_000)), benefit(percent("15"), "会员九折"))
        assert amounts(result) == [("会员九折", 1_500)]
        assert result.goods_total == cny(8_500)

    @pytest.mark.parametrize(
        ("subtotal", "rate", "expected"),
        [(999, "10", 99), (1_001, "12.5", 125), (1, "99.999", 0), (3_333, "33.333", 1_110)],
    )
    def test_rounds_down_to_whole_minor_units(self, subtotal: int, rate: str, expected: int) -> None:
        result = run(cart(subtotal=subtotal), benefit(percent(rate), "p"))
        assert sum(d.amount.amount_minor for d in result.discounts) == expected
        assert result.goods_total == cny(subtotal - expected)

    def test_two_tens_give_nineteen(self) -> None:
        result = run(cart(subtotal=10_000), benefit(percent("10"), "a"), coupon("C", percent("10")))
        assert amounts(result) == [("a", 1_000), ("coupon C", 900)]
        assert result.goods_total == cny(8_100)

    def test_benefits_before_coupons_then_larger_first(self) -> None:
        result = run(
            cart(subtotal=10_000),
            coupon("BIG", percent("50")),
            benefit(percent("5"), "five"),
            benefit(percent("20"), "twenty"),
        )
        # 20 % of 10000, 5 % of 8000, 50 % of 7600
        assert amounts(result) == [("twenty", 2_000), ("five", 400), ("coupon BIG", 3_800)]

    def test_equal_percents_go_by_id(self) -> None:
        later = benefit(percent("10"), "later", id=900)
        earlier = benefit(percent("10"), "earlier", id=100)
        result = run(cart(subtotal=999), later, earlier)
        assert amounts(result) == [("earlier", 99), ("later", 90)]

    def test_a_hundred_percent_leaves_nothing_for_later_offers(self) -> None:
        result = run(
            cart(subtotal=5_000, shipping=500),
            benefit(percent("100"), "all"),
            benefit(fixed(100), "fixed"),
            coupon("C", fixed(100)),
        )
        assert amounts(result) == [("all", 5_000)]
        assert result.coupons_unmet == {"C": "nothing left to discount"}
        assert result.total == cny(500)


class TestFixed:
    def test_fixed_comes_after_percent_whatever_the_input_order(self) -> None:
        result = run(cart(subtotal=10_000), benefit(fixed(1_000), "fixed"), benefit(percent("10"), "pct"))
        assert amounts(result) == [("pct", 1_000), ("fixed", 1_000)]

    def test_larger_than_the_subtotal_gives_only_what_is_left(self) -> None:
        result = run(cart(item("A", 3_000), shipping=600), benefit(fixed(5_000), "big"))
        assert amounts(result) == [("big", 3_000)]
        assert result.goods_total == cny(0)
        assert result.total == cny(600)

    def test_second_fixed_is_capped_by_what_the_first_left(self) -> None:
        result = run(cart(subtotal=1_000), benefit(fixed(800), "first"), coupon("C", fixed(800)))
        assert amounts(result) == [("first", 800), ("coupon C", 200)]
        assert result.coupons_applied == ["C"]
        assert result.goods_total == cny(0)

    def test_stacking_percent_percent_fixed_and_coupons(self) -> None:
        result = run(
            cart(item("A", 4_000, 2), item("B", 2_000), shipping=1_000),
            coupon("FIX", fixed(300)),
            benefit(fixed(500), "tier fixed"),
            coupon("PCT", percent("10")),
            benefit(percent("10"), "tier pct"),
            benefit(FreeShipping(), "free shipping"),
        )
        assert amounts(result) == [
            ("tier pct", 1_000),
            ("coupon PCT", 900),
            ("tier fixed", 500),
            ("coupon FIX", 300),
            ("free shipping", 1_000),
        ]
        assert [d.applies_to for d in result.discounts][-1] == "shipping"
        assert result.coupons_applied == ["PCT", "FIX"]
        assert (result.goods_total, result.shipping_total, result.total) == (cny(7_300), cny(0), cny(7_300))

    def test_coupons_that_a_later_discount_makes_worthless_are_not_spent(self) -> None:
        # A 40-yuan cart: the free cup and the 10 % give something at their steps, but the 50 yuan off would
        # take the cart to zero without them, so spending them would buy the member nothing.
        result = run(
            cart(item("CUP", 1_000), item("TEA", 3_000)),
            coupon("FREE", FreeItem(sku="CUP")),
            coupon("PCT", percent("10")),
            coupon("FIFTY", fixed(5_000)),
        )
        assert result.coupons_applied == ["FIFTY"]
        assert amounts(result) == [("coupon FIFTY", 4_000)]
        assert set(result.coupons_unmet) == {"FREE", "PCT"}
        assert result.goods_total == cny(0)

    def test_a_coupon_a_benefit_makes_worthless_is_not_spent(self) -> None:
        result = run(cart(subtotal=5_000), coupon("PCT", percent("10")), benefit(fixed(10_000), "tier"))
        assert (result.coupons_applied, amounts(result)) == ([], [("tier", 5_000)])
        assert result.coupons_unmet == {"PCT": "the other discounts already take off everything it would"}

    def test_a_coupon_that_lowers_the_total_is_kept_though_it_gives_less_than_listed(self) -> None:
        # 10 % then 50 yuan off 60 yuan: without the 10 %, the 50 leaves 10 yuan to pay, with it 4.
        result = run(cart(subtotal=6_000), coupon("PCT", percent("10")), coupon("FIFTY", fixed(5_000)))
        assert result.coupons_applied == ["PCT", "FIFTY"]
        assert result.goods_total == cny(400)


class TestConditions:
    def test_categories_narrow_the_discount(self) -> None:
        the_cart = cart(
            item("SHOE", 6_000, category="shoes"), item("BREAD", 3_000, category="food"), subtotal=10_000
        )
        result = run(
            the_cart,
            benefit(percent("10", categories=["shoes"]), "shoes 10%"),
            benefit(fixed(5_000, categories=["food"]), "food 50 off"),
            benefit(percent("10"), "all 10%", id=10**9),  # after the shoes one: same percent, larger id
        )
        # shoes 600; whole cart: 10 % of (5400 + 3000 + 1000 unitemized) = 940; food: what is left, 2700
        assert amounts(result) == [("shoes 10%", 600), ("all 10%", 940), ("food 50 off", 2_700)]
        assert result.goods_total == cny(5_760)

    def test_categories_not_in_the_cart(self) -> None:
        result = run(
            cart(item("A", 1_000, category="food")),
            benefit(percent("10", categories=["wine"])),
            coupon("WINE", fixed(100, categories=["wine"])),
        )
        assert result.discounts == []
        assert result.coupons_unmet == {"WINE": "nothing left to discount in the categories: wine"}

    def test_unitemized_remainder_has_no_category(self) -> None:
        result = run(
            cart(item("A", 1_000, category="food"), subtotal=5_000),
            benefit(fixed(9_999, categories=["food"]), "f"),
        )
        assert amounts(result) == [("f", 1_000)]
        assert result.goods_total == cny(4_000)

    @pytest.mark.parametrize(("channel", "applies"), [("online", True), ("store", False), (None, False)])
    def test_channel(self, channel: str | None, applies: bool) -> None:
        result = run(
            cart(subtotal=1_000),
            benefit(percent("10", channels=["online"]), "online"),
            coupon("ONLINE", fixed(100, channels=["online"])),
            channel=channel,
        )
        assert (len(result.discounts) == 2) is applies
        assert (result.coupons_unmet == {}) is applies
        if not applies:
            assert result.coupons_unmet["ONLINE"] == "only for the channels: online"

    def test_min_subtotal_not_met(self) -> None:
        result = run(
            cart(subtotal=9_999),
            benefit(fixed(1_000, min_subtotal=10_000)),
            coupon("MIN", percent("10", min_subtotal=10_000)),
        )
        assert result.discounts == []
        assert result.coupons_unmet == {"MIN": "the subtotal is below the minimum of 10000"}

    def test_min_subtotal_is_before_discounts(self) -> None:
        result = run(
            cart(subtotal=10_000),
            benefit(percent("50"), "half"),
            benefit(fixed(1_000, min_subtotal=10_000), "fixed"),
        )
        assert amounts(result) == [("half", 5_000), ("fixed", 1_000)]


class TestShipping:
    def test_free_shipping_takes_the_whole_shipping(self) -> None:
        result = run(cart(subtotal=5_000, shipping=1_200), benefit(FreeShipping(), "包邮"))
        assert [(d.name, d.amount, d.applies_to) for d in result.discounts] == [
            ("包邮", cny(1_200), "shipping")
        ]
        assert (result.goods_total, result.shipping_total, result.total) == (cny(5_000), cny(0), cny(5_000))

    def test_nothing_else_touches_shipping(self) -> None:
        result = run(cart(subtotal=1_000, shipping=1_200), benefit(fixed(5_000), "big"))
        assert result.goods_total == cny(0)
        assert result.shipping_total == cny(1_200)

    def test_a_free_shipping_coupon_is_not_spent_when_shipping_is_already_free(self) -> None:
        result = run(
            cart(subtotal=5_000, shipping=1_200),
            coupon("SHIP", FreeShipping()),
            benefit(FreeShipping(), "tier"),
        )
        assert amounts(result) == [("tier", 1_200)]
        assert result.coupons_unmet == {"SHIP": "shipping is already free"}

    def test_free_shipping_conditions(self) -> None:
        conditional = FreeShipping(min_subtotal=10_000, channels=["online"])
        assert run(
            cart(subtotal=9_000, shipping=800), benefit(conditional), channel="online"
        ).shipping_total == cny(800)
        assert run(
            cart(subtotal=10_000, shipping=800), benefit(conditional), channel="store"
        ).shipping_total == cny(800)
        assert run(
            cart(subtotal=10_000, shipping=800), benefit(conditional), channel="online"
        ).shipping_total == cny(0)

    def test_free_shipping_with_categories_needs_such_an_item(self) -> None:
        wine_only = FreeShipping(categories=["wine"])
        without = run(cart(item("A", 1_000, category="food"), shipping=800), benefit(wine_only))
        with_wine = run(cart(item("W", 1_000, category="wine"), shipping=800), benefit(wine_only))
        assert (without.shipping_total, with_wine.shipping_total) == (cny(800), cny(0))

    def test_free_shipping_coupon_without_shipping(self) -> None:
        result = run(cart(subtotal=1_000), coupon("SHIP", FreeShipping()))
        assert result.coupons_unmet == {"SHIP": "there is no shipping to pay"}


class TestLinePrices:
    def test_member_day_on_its_weekday(self) -> None:
        wednesday = benefit(
            MemberDayPrice(weekday=WEDNESDAY, percent=Decimal(20), categories=["fresh"]), "周三"
        )
        the_cart = cart(item("F", 2_500, 2, "fresh"), item("T", 1_000, category="tools"))
        on = run(the_cart, wednesday, weekday=WEDNESDAY)
        off = run(the_cart, wednesday, weekday=MONDAY)
        assert amounts(on) == [("周三", 1_000)]
        assert on.goods_total == cny(5_000)
        assert off.discounts == []
        assert off.goods_total == cny(6_000)

    def test_member_day_comes_before_percent_discounts(self) -> None:
        result = run(
            cart(subtotal=10_000),
            benefit(percent("50"), "half"),
            benefit(MemberDayPrice(weekday=MONDAY, percent=Decimal(10)), "monday"),
            weekday=MONDAY,
        )
        assert amounts(result) == [("monday", 1_000), ("half", 4_500)]

    def test_free_item(self) -> None:
        result = run(cart(item("CUP", 1_000, 3), item("TEA", 500)), benefit(FreeItem(sku="CUP"), "free cup"))
        assert amounts(result) == [("free cup", 1_000)]
        assert result.goods_total == cny(2_500)

    def test_free_item_capped_at_the_units_in_the_cart(self) -> None:
        result = run(
            cart(item("CUP", 1_000, 2), item("TEA", 500)),
            benefit(FreeItem(sku="CUP", quantity=5), "cups"),
            coupon("CUP", FreeItem(sku="CUP")),
        )
        assert amounts(result) == [("cups", 2_000)]
        assert result.coupons_unmet == {"CUP": "every unit of CUP in the cart is already free"}

    def test_free_item_gives_the_cheapest_units(self) -> None:
        result = run(cart(item("CUP", 1_200), item("CUP", 800)), benefit(FreeItem(sku="CUP"), "cup"))
        assert amounts(result) == [("cup", 800)]

    def test_free_item_skips_units_that_cost_nothing(self) -> None:
        """A unit priced 0 (a sample, a gift the shop already gave) is free already: the offer gives the
        cheapest unit that costs something, rather than nothing."""
        result = run(
            cart(item("CUP", 0), item("CUP", 1_500, 2)),
            benefit(FreeItem(sku="CUP"), "cup"),
            coupon("CUP", FreeItem(sku="CUP")),
        )
        assert amounts(result) == [("cup", 1_500), ("coupon CUP", 1_500)]
        assert (result.coupons_applied, result.coupons_unmet) == (["CUP"], {})
        assert result.goods_total == cny(0)

    def test_free_item_with_only_units_that_cost_nothing(self) -> None:
        result = run(cart(item("CUP", 0, 2), item("TEA", 500)), coupon("CUP", FreeItem(sku="CUP")))
        assert result.discounts == []
        assert result.coupons_unmet == {"CUP": "every unit of CUP in the cart is already free"}

    def test_free_item_not_in_the_cart(self) -> None:
        result = run(cart(item("TEA", 500)), benefit(FreeItem(sku="CUP")), coupon("CUP", FreeItem(sku="CUP")))
        assert result.discounts == []
        assert result.coupons_unmet == {"CUP": "CUP is not in the cart"}

    def test_free_items_come_before_percentages(self) -> None:
        result = run(
            cart(item("CUP", 1_000, 3)),
            benefit(MemberDayPrice(weekday=MONDAY, percent=Decimal(10)), "monday"),
            benefit(FreeItem(sku="CUP"), "cup"),
            weekday=MONDAY,
        )
        assert amounts(result) == [("cup", 1_000), ("monday", 200)]


class TestOtherKinds:
    def test_earning_and_birthday_benefits_play_no_part(self) -> None:
        result = run(
            cart(subtotal=1_000),
            benefit(PointsMultiplier(multiplier=Decimal(2))),
            benefit(BirthdayGift(coupon_name="生日券", coupon=fixed(1_000))),
        )
        assert result.discounts == []
        assert result.perks == []
        assert result.total == cny(1_000)

    def test_priority_service_is_a_perk(self) -> None:
        result = run(cart(subtotal=1_000), benefit(PriorityService(description="专属客服"), "优先服务"))
        assert result.discounts == []
        [perk] = result.perks
        assert (perk.name, perk.description, perk.source, perk.source_ref) == (
            "优先服务",
            "专属客服",
            "tier",
            "gold",
        )


def terms(**changes: Any) -> RedeemTerms:
    values: dict[str, Any] = {
        "currency": "CNY",
        "point_value_minor": Decimal(1),
        "min_redeem_points": 1,
        "max_redeem_share": Decimal(1),
    }
    return RedeemTerms(**(values | changes))


class TestPoints:
    def test_not_asked_for_reports_the_maximum(self) -> None:
        result = run(cart(subtotal=10_000), available=3_000)
        assert result.points.max_usable == 3_000
        assert result.points.max_value == cny(3_000)
        assert (result.points.applied, result.points.applied_value, result.points.capped_by) == (
            0,
            cny(0),
            "none",
        )
        assert result.total == cny(10_000)

    def test_applied_as_asked(self) -> None:
        result = run(cart(subtotal=10_000, shipping=500), available=3_000, points_to_use=2_000)
        assert (result.points.applied, result.points.capped_by) == (2_000, "none")
        assert result.total == cny(8_500)

    def test_capped_by_balance(self) -> None:
        result = run(cart(subtotal=10_000), available=300, points_to_use=500)
        assert (result.points.max_usable, result.points.applied, result.points.capped_by) == (
            300,
            300,
            "balance",
        )

    def test_capped_by_share_of_goods_after_discounts_without_shipping(self) -> None:
        result = run(
            cart(subtotal=10_000, shipping=2_000),
            benefit(fixed(2_000)),
            available=100_000,
            points_to_use=9_000,
            terms=terms(max_redeem_share=Decimal("0.5")),
        )
        # half of 8000 goods, at 1 fen a point
        assert (result.points.max_usable, result.points.applied, result.points.capped_by) == (
            4_000,
            4_000,
            "share",
        )
        assert result.total == cny(8_000 - 4_000 + 2_000)

    def test_below_the_minimum(self) -> None:
        result = run(
            cart(subtotal=10_000), available=500, points_to_use=500, terms=terms(min_redeem_points=1_000)
        )
        assert (result.points.max_usable, result.points.applied, result.points.capped_by) == (0, 0, "minimum")

    def test_asking_fewer_than_the_minimum(self) -> None:
        result = run(
            cart(subtotal=10_000), available=5_000, points_to_use=50, terms=terms(min_redeem_points=100)
        )
        assert (result.points.max_usable, result.points.applied, result.points.capped_by) == (
            5_000,
            0,
            "minimum",
        )

    def test_share_cap_is_exact(self) -> None:
        # 999 / 0.3 is 3330 exactly; in binary floating point it is 3329.999…
        result = run(
            cart(subtotal=999),
            available=10_000,
            points_to_use=10_000,
            terms=terms(point_value_minor=Decimal("0.3")),
        )
        assert (result.points.max_usable, result.points.applied_value) == (3_330, cny(999))
        assert result.total == cny(0)

    def test_value_is_rounded_down(self) -> None:
        result = run(
            cart(subtotal=10_000), available=7, points_to_use=7, terms=terms(point_value_minor=Decimal("1.5"))
        )
        assert result.points.applied_value == cny(10)  # 10.5 fen
        assert result.total == cny(9_990)

    def test_no_goods_no_points(self) -> None:
        result = run(
            cart(subtotal=1_000, shipping=800), benefit(fixed(1_000)), available=5_000, points_to_use=100
        )
        assert (result.points.max_usable, result.points.applied, result.points.capped_by) == (0, 0, "share")
        assert result.total == cny(800)


class TestRefusals:
    def test_currency_mismatch(self) -> None:
        with pytest.raises(CurrencyMismatch):
            run(Cart(subtotal=cny(1_000), shipping=Money(0, "USD")))
        with pytest.raises(CurrencyMismatch):
            run(
                cart(
                    CartItem(sku="A", category=None, quantity=1, unit_price=Money(100, "USD")), subtotal=1_000
                )
            )

    def test_items_exceed_subtotal(self) -> None:
        with pytest.raises(CartItemsExceedSubtotal):
            run(cart(item("A", 600, 2), subtotal=1_000))


class TestSpread:
    @given(
        st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12),
        st.integers(min_value=0, max_value=10**7),
    )
    def test_shares_are_exact_and_never_below_zero(self, lefts: list[int], wanted: int) -> None:
        lines = [_Line(sku=None, category=None, quantity=1, unit_price=v, left=v) for v in lefts]
        amount = min(wanted, sum(lefts))
        _spread(lines, amount)
        assert all(0 <= line.left <= before for line, before in zip(lines, lefts, strict=True))
        assert sum(lefts) - sum(line.left for line in lines) == amount

    @given(
        st.lists(
            st.tuples(st.integers(1, 5), st.integers(0, 5_000), st.sampled_from(["a", "b", None])), max_size=6
        ),
        st.integers(0, 20_000),
        st.lists(
            st.one_of(
                st.builds(
                    lambda p, c: percent(str(p), categories=c),
                    st.integers(1, 100),
                    st.sampled_from([[], ["a"]]),
                ),
                st.builds(
                    lambda a, c: fixed(a, categories=c), st.integers(1, 20_000), st.sampled_from([[], ["b"]])
                ),
            ),
            max_size=5,
        ),
    )
    def test_goods_never_below_zero_and_discounts_add_up(
        self, rows: list[tuple[int, int, str | None]], extra: int, offers: list[BenefitProperties]
    ) -> None:
        the_cart = cart(*(item(f"S{i}", p, q, c) for i, (q, p, c) in enumerate(rows)))
        the_cart = Cart(
            subtotal=cny(the_cart.subtotal.amount_minor + extra), shipping=cny(0), items=the_cart.items
        )
        result = run(the_cart, *(benefit(o) for o in offers))
        given_off = sum(d.amount.amount_minor for d in result.discounts)
        assert all(d.amount.amount_minor > 0 for d in result.discounts)
        assert result.goods_total.amount_minor >= 0
        assert result.goods_total.amount_minor == the_cart.subtotal.amount_minor - given_off

    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["CUP", "TEA"]),
                st.sampled_from(["a", "b", None]),
                st.sampled_from([0, 1, 3, 999, 4_999]),
                st.integers(1, 3),
            ),
            min_size=2,
            max_size=5,
        ),
        st.lists(
            st.one_of(
                st.builds(
                    lambda p, c: percent(str(p), categories=c),
                    st.sampled_from([10, 20, 50]),
                    st.sampled_from([[], ["a"]]),
                ),
                st.builds(
                    lambda a, c: fixed(a, categories=c), st.integers(1, 20_000), st.sampled_from([[], ["b"]])
                ),
                st.builds(
                    lambda q, c: FreeItem(sku="CUP", quantity=q, categories=c),
                    st.integers(1, 3),
                    st.sampled_from([[], ["a"]]),
                ),
            ),
            min_size=1,
            max_size=4,
        ),
    )
    @example(
        rows=[("CUP", "a", 999, 1), ("TEA", "b", 999, 1)],
        offers=[percent("20"), percent("10", categories=["a"])],
    )
    @example(  # one sku at one price in two categories: which line's unit is free
        rows=[("CUP", "a", 999, 1), ("CUP", "b", 999, 1)],
        offers=[FreeItem(sku="CUP"), fixed(999, categories=["b"])],
    )
    def test_the_order_of_the_lines_does_not_change_the_price(
        self, rows: list[tuple[str, str | None, int, int]], offers: list[BenefitProperties]
    ) -> None:
        """A shop lists the same cart in another order (by category at checkout, as added on the cart page):
        the rounding's spare units went to the lines listed first, so a later discount on a category saw a
        unit more or less, and the total moved by a minor unit."""
        items = [item(sku, unit_price, quantity, category) for sku, category, unit_price, quantity in rows]
        given_offers = [benefit(o) for o in offers]
        listed = run(cart(*items), *given_offers)
        reordered = run(cart(*reversed(items)), *given_offers)
        assert amounts(reordered) == amounts(listed)
        assert reordered.total == listed.total

    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["CUP", "TEA"]),
                st.sampled_from(["a", "b"]),
                st.sampled_from([0, 1, 3, 999, 1_499]),
                st.integers(1, 3),
            ),
            min_size=1,
            max_size=4,
        ),
        st.lists(
            st.one_of(
                st.builds(
                    lambda p, c: percent(str(p), categories=c),
                    st.sampled_from([10, 25, 50]),
                    st.sampled_from([[], ["a"]]),
                ),
                st.builds(
                    lambda a, c: fixed(a, categories=c), st.integers(1, 20_000), st.sampled_from([[], ["b"]])
                ),
                st.builds(lambda q: FreeItem(sku="CUP", quantity=q), st.integers(1, 3)),
            ),
            min_size=1,
            max_size=4,
        ),
    )
    @example(
        rows=[("CUP", "a", 1_499, 2), ("TEA", "b", 2_999, 1)],
        offers=[percent("10"), fixed(5_000, categories=["b"])],
    )
    def test_a_line_split_in_two_costs_the_same(
        self, rows: list[tuple[str, str, int, int]], offers: list[BenefitProperties]
    ) -> None:
        """One sku at one price listed as one line of n units or as lines of fewer (added to the cart one
        at a time): the rounding's spare units were placed line by line, so the split cart's category had a
        unit more or less left for a later discount."""
        items = [item(sku, unit_price, quantity, category) for sku, category, unit_price, quantity in rows]
        split = [
            item(i.sku or "", i.unit_price.amount_minor, 1, i.category)
            for i in items
            for _ in range(i.quantity)
        ]
        given_offers = [benefit(o) for o in offers]
        listed = run(cart(*items), *given_offers)
        one_by_one = run(cart(*split), *given_offers)
        assert amounts(one_by_one) == amounts(listed)
        assert one_by_one.total == listed.total
