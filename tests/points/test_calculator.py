"""The earning rule engine, without I/O."""

from __future__ import annotations

import math
import uuid
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from loyalty_api.earning.calculator import ActiveRule, Multiplier, Purchase, calculate
from loyalty_api.earning.kinds import (
    BaseRate,
    BirthdayBonus,
    CategoryBonus,
    EarnItem,
    MemberDay,
    RuleProperties,
    SkuBonus,
)
from loyalty_api.money import Money, Rounding

WEDNESDAY = date(2026, 3, 18)


def purchase(
    amount: int = 10_000,
    *,
    items: list[EarnItem] | None = None,
    day: date = WEDNESDAY,
    birthday: date | None = None,
    channel: str | None = "store",
    store_id: str | None = None,
) -> Purchase:
    return Purchase(
        amount=Money(amount, "CNY"),
        items=items or [],
        channel=channel,
        store_id=store_id,
        local_date=day,
        birthday=birthday,
    )


def rule(
    properties: RuleProperties, *, priority: int = 0, stackable: bool = True, name: str = ""
) -> ActiveRule:
    return ActiveRule(
        id=uuid.uuid4(),
        name=name or properties.kind,
        priority=priority,
        stackable=stackable,
        properties=properties,
    )


def item(amount: int, *, sku: str = "SKU", category: str = "food", quantity: int = 1) -> EarnItem:
    return EarnItem(sku=sku, category=category, quantity=quantity, line_total=Money(amount * quantity, "CNY"))


def total(lines: list) -> int:  # type: ignore[type-arg]
    return sum(line.points for line in lines)


class TestBaseAndRounding:
    @pytest.mark.parametrize(
        ("amount", "rate", "rounding", "expected"),
        [
            (12_990, "1", Rounding.down, 129),
            (12_990, "1", Rounding.half_up, 130),
            (12_940, "1", Rounding.half_up, 129),
            (12_901, "1", Rounding.up, 130),
            (12_990, "0.5", Rounding.down, 64),
            (99, "1", Rounding.down, 0),
            (100, "2.5", Rounding.down, 2),
        ],
    )
    def test_base_points(self, amount: int, rate: str, rounding: Rounding, expected: int) -> None:
        lines = calculate(purchase(amount), rules=[], program_rate=Decimal(rate), rounding=rounding)
        assert [(line.kind, line.points) for line in lines] == [("base_rate", expected)]

    def test_zero_decimal_currency(self) -> None:
        lines = calculate(
            Purchase(Money(1500, "JPY"), [], None, None, WEDNESDAY, None),
            rules=[],
            program_rate=Decimal("0.01"),
            rounding=Rounding.down,
        )
        assert total(lines) == 15

    @pytest.mark.parametrize(
        ("currency", "amount"),
        [
            ("JPY", 1),
            ("KRW", 1),
            ("USD", 100),
            ("KWD", 1_000),
            ("BHD", 1_000),
            ("CLF", 10_000),
            ("UYW", 10_000),
        ],
    )
    def test_a_major_unit_is_as_many_minor_units_as_iso_4217_says(self, currency: str, amount: int) -> None:
        """One yen is one minor unit, one dollar 100 cents, one dinar 1,000 fils, one Unidad de Fomento 10,000
        ten-thousandths: each earns the one point a rate of 1 gives per major unit."""
        lines = calculate(
            Purchase(Money(amount, currency), [], None, None, WEDNESDAY, None),
            rules=[],
            program_rate=Decimal(1),
            rounding=Rounding.down,
        )
        assert total(lines) == 1

    def test_base_rate_rule_replaces_the_programme_rate_where_it_matches(self) -> None:
        online = rule(BaseRate(kind="base_rate", rate=Decimal(2), channels=["online"]), name="online double")
        in_store = calculate(
            purchase(10_000), rules=[online], program_rate=Decimal(1), rounding=Rounding.down
        )
        web = calculate(
            purchase(10_000, channel="online"),
            rules=[online],
            program_rate=Decimal(1),
            rounding=Rounding.down,
        )
        assert total(in_store) == 100
        assert total(web) == 200
        assert web[0].rule == "online double"

    def test_tier_and_benefit_multipliers_add_to_the_base(self) -> None:
        lines = calculate(
            purchase(10_000),
            rules=[],
            program_rate=Decimal(1),
            rounding=Rounding.down,
            multipliers=[
                Multiplier(name="金卡", kind="tier_multiplier", factor=Decimal("1.5")),
                Multiplier(name="双倍积分", kind="points_multiplier", factor=Decimal(2)),
                Multiplier(name="no-op", kind="points_multiplier", factor=Decimal(1)),
            ],
        )
        assert [(line.rule, line.kind, line.points) for line in lines] == [
            ("base", "base_rate", 100),
            ("金卡", "tier_multiplier", 50),
            ("双倍积分", "points_multiplier", 100),
        ]


class TestBonuses:
    def test_member_day_only_on_its_weekday(self) -> None:
        wednesday = rule(MemberDay(kind="member_day", weekday=3, multiplier=Decimal(2)))
        assert (
            total(calculate(purchase(), rules=[wednesday], program_rate=Decimal(1), rounding=Rounding.down))
            == 200
        )
        thursday = purchase(day=date(2026, 3, 19))
        assert (
            total(calculate(thursday, rules=[wednesday], program_rate=Decimal(1), rounding=Rounding.down))
            == 100
        )

    @pytest.mark.parametrize(
        ("period", "birthday", "day", "applies"),
        [
            ("day", date(1990, 3, 18), WEDNESDAY, True),
            ("day", date(1990, 3, 17), WEDNESDAY, False),
            ("month", date(1990, 3, 1), WEDNESDAY, True),
            ("month", date(1990, 4, 18), WEDNESDAY, False),
            ("day", date(1992, 2, 29), date(2026, 2, 28), True),
            ("day", date(1992, 2, 29), date(2028, 2, 28), False),
            ("day", date(1992, 2, 29), date(2028, 2, 29), True),
        ],
    )
    def test_birthday(self, period: str, birthday: date, day: date, applies: bool) -> None:
        bonus = rule(BirthdayBonus(kind="birthday", multiplier=Decimal(2), period=period))  # type: ignore[arg-type]
        lines = calculate(
            purchase(day=day, birthday=birthday),
            rules=[bonus],
            program_rate=Decimal(1),
            rounding=Rounding.down,
        )
        assert total(lines) == (200 if applies else 100)

    def test_no_birthday_no_bonus(self) -> None:
        bonus = rule(BirthdayBonus(kind="birthday", multiplier=Decimal(2), period="month"))
        assert (
            total(calculate(purchase(), rules=[bonus], program_rate=Decimal(1), rounding=Rounding.down))
            == 100
        )

    def test_category_multiplier_applies_to_matching_items_only(self) -> None:
        bonus = rule(CategoryBonus(kind="category_bonus", categories=["wine"], multiplier=Decimal(3)))
        cart = purchase(10_000, items=[item(6_000, category="wine"), item(4_000, category="food")])
        lines = calculate(cart, rules=[bonus], program_rate=Decimal(1), rounding=Rounding.down)
        assert [line.points for line in lines] == [100, 120]

    def test_item_bonuses_count_what_was_paid_not_list_prices(self) -> None:
        bonus = rule(CategoryBonus(kind="category_bonus", categories=["wine"], multiplier=Decimal(3)))
        # 200 yuan of wine listed, 100 yuan paid after a 50 % receipt discount: the bonus counts 100.
        cart = purchase(10_000, items=[item(20_000, category="wine")])
        assert (
            total(calculate(cart, rules=[bonus], program_rate=Decimal(1), rounding=Rounding.down))
            == 100 + 200
        )

    def test_sku_fixed_points_per_unit(self) -> None:
        bonus = rule(SkuBonus(kind="sku_bonus", skus=["COFFEE"], points_per_unit=50))
        cart = purchase(3_000, items=[item(1_000, sku="COFFEE", quantity=3)])
        assert (
            total(calculate(cart, rules=[bonus], program_rate=Decimal(1), rounding=Rounding.down)) == 30 + 150
        )

    def test_sku_fixed_points_per_unit_only_for_units_paid_for(self) -> None:
        # Two coffees bought and one given free on the same receipt: 50 points for each of the two.
        bonus = rule(SkuBonus(kind="sku_bonus", skus=["COFFEE"], points_per_unit=50))
        cart = purchase(
            2_000, items=[item(1_000, sku="COFFEE", quantity=2), item(0, sku="COFFEE", quantity=1)]
        )
        assert (
            total(calculate(cart, rules=[bonus], program_rate=Decimal(1), rounding=Rounding.down)) == 20 + 100
        )

    def test_a_free_gift_alone_earns_no_points_a_unit(self) -> None:
        bonus = rule(SkuBonus(kind="sku_bonus", skus=["MUG"], points_per_unit=500))
        cart = purchase(3_000, items=[item(3_000, sku="COFFEE"), item(0, sku="MUG", quantity=100)])
        lines = calculate(cart, rules=[bonus], program_rate=Decimal(1), rounding=Rounding.down)
        assert [line.kind for line in lines] == ["base_rate"]
        assert total(lines) == 30

    def test_store_condition(self) -> None:
        bonus = rule(MemberDay(kind="member_day", weekday=3, multiplier=Decimal(2), store_ids=["S1"]))
        assert (
            total(
                calculate(
                    purchase(store_id="S2"), rules=[bonus], program_rate=Decimal(1), rounding=Rounding.down
                )
            )
            == 100
        )
        assert (
            total(
                calculate(
                    purchase(store_id="S1"), rules=[bonus], program_rate=Decimal(1), rounding=Rounding.down
                )
            )
            == 200
        )

    def test_each_line_rounds_on_its_own_and_lines_add_up(self) -> None:
        bonus = rule(MemberDay(kind="member_day", weekday=3, multiplier=Decimal("1.5")))
        lines = calculate(purchase(12_990), rules=[bonus], program_rate=Decimal(1), rounding=Rounding.down)
        assert [line.points for line in lines] == [129, 64]


def exactly_rounded(value: Fraction, rounding: Rounding) -> int:
    if rounding is Rounding.down:
        return math.floor(value)
    if rounding is Rounding.up:
        return math.ceil(value)
    return math.floor(value + Fraction(1, 2))


class TestItemBonusOnDiscountedReceipts:
    """A discount's paid share (paid ÷ listed) is often no finite decimal, as with 1/3: the bonus is that
    share of the matching items' points, rounded once from the exact value."""

    def test_a_third_paid_gives_whole_points(self) -> None:
        bonus = rule(CategoryBonus(kind="category_bonus", categories=["shoes"], multiplier=Decimal(2)))
        cart = purchase(1_000, items=[item(3_000, category="shoes")])
        lines = calculate(cart, rules=[bonus], program_rate=Decimal(1), rounding=Rounding.down)
        assert [line.points for line in lines] == [10, 10]

    @pytest.mark.parametrize("rounding", list(Rounding))
    @pytest.mark.parametrize("multiplier", ["2", "1.5", "3.25"])
    def test_the_bonus_is_the_exact_share_rounded_once(self, rounding: Rounding, multiplier: str) -> None:
        bonus = rule(
            CategoryBonus(kind="category_bonus", categories=["shoes"], multiplier=Decimal(multiplier))
        )
        for shoes in range(300, 14_001, 700):
            for other in (0, 700, 3_300):
                listed = shoes + other
                for paid in range(100, listed, 100):
                    cart = purchase(paid, items=[item(shoes, category="shoes"), item(other, category="food")])
                    lines = calculate(cart, rules=[bonus], program_rate=Decimal(1), rounding=rounding)
                    exact = (
                        Fraction(shoes, 100) * Fraction(paid, listed) * (Fraction(Decimal(multiplier)) - 1)
                    )
                    bonus_points = sum(line.points for line in lines[1:])  # no line: it came to none
                    assert bonus_points == exactly_rounded(exact, rounding), (shoes, other, paid)


class TestStacking:
    def setup_method(self) -> None:
        self.day = rule(
            MemberDay(kind="member_day", weekday=3, multiplier=Decimal(2)), priority=10, name="day"
        )
        self.birthday = rule(
            BirthdayBonus(kind="birthday", multiplier=Decimal(3), period="month"), priority=5, name="bd"
        )
        self.cart = purchase(10_000, birthday=date(1990, 3, 1))

    def names(self, rules: list[ActiveRule]) -> list[str]:
        lines = calculate(self.cart, rules=rules, program_rate=Decimal(1), rounding=Rounding.down)
        return [line.rule for line in lines[1:]]

    def test_stackable_rules_add_up(self) -> None:
        assert self.names([self.birthday, self.day]) == ["day", "bd"]

    def test_a_non_stackable_rule_first_applies_alone(self) -> None:
        exclusive = rule(
            MemberDay(kind="member_day", weekday=3, multiplier=Decimal(2)),
            priority=10,
            stackable=False,
            name="x",
        )
        assert self.names([self.birthday, exclusive]) == ["x"]

    def test_a_non_stackable_rule_after_another_bonus_is_skipped(self) -> None:
        exclusive = rule(
            BirthdayBonus(kind="birthday", multiplier=Decimal(3), period="month"),
            priority=5,
            stackable=False,
            name="x",
        )
        assert self.names([self.day, exclusive]) == ["day"]

    def test_a_rule_that_does_not_apply_does_not_block(self) -> None:
        exclusive = rule(
            MemberDay(kind="member_day", weekday=1, multiplier=Decimal(5)), priority=20, stackable=False
        )
        assert self.names([exclusive, self.day, self.birthday]) == ["day", "bd"]

    @pytest.mark.parametrize(
        ("unit_price", "multiplier"), [(0, "3"), (5_000, "1"), (40, "2")], ids=["free", "x1", "rounds to 0"]
    )
    def test_a_rule_that_gives_no_points_neither_shows_nor_blocks(
        self, unit_price: int, multiplier: str
    ) -> None:
        exclusive = rule(
            CategoryBonus(kind="category_bonus", categories=["promo"], multiplier=Decimal(multiplier)),
            priority=20,
            stackable=False,
            name="x",
        )
        self.cart = purchase(10_000, items=[item(unit_price, category="promo")], birthday=date(1990, 3, 1))
        assert self.names([exclusive, self.day, self.birthday]) == ["day", "bd"]
