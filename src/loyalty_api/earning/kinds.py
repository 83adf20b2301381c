"""Earning rule kinds: one properties model each, with its evaluator as the `bonus` method.

`bonus` gets the earn's context and returns the extra points the rule gives, exactly (a Fraction: a receipt's
paid share need not be a finite decimal), or None when it does not apply. Rounding happens once per breakdown
line, by the programme's rule. A new kind is one class here, one entry in AnyRuleProperties, and its tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter, model_validator

from loyalty_api.kinds import KIND_MODEL_CONFIG
from loyalty_api.money import Money, Multiplier, Rate

Code = Annotated[str, Field(min_length=1, max_length=64)]


@dataclass(frozen=True, slots=True)
class EarnItem:
    sku: str | None
    category: str | None
    quantity: int
    line_total: Money


@dataclass(frozen=True, slots=True)
class EarnContext:
    amount: Money
    items: Sequence[EarnItem]
    channel: str | None
    store_id: str | None
    local_date: date  # the day of the purchase in the programme's time zone
    birthday: date | None
    base_rate: Decimal  # points per major unit that the base line used
    base_points: Decimal  # the exact, unrounded base points
    # What was paid over what the items list (≤ 1): item bonuses count what was paid, not list prices, so a
    # discount on the receipt shrinks them alike and a made-up item price cannot inflate them.
    paid_share: Fraction = Fraction(1)


def is_birthday(today: date, birthday: date, period: str) -> bool:
    if today.month != birthday.month:
        return False
    if period == "month":
        return True
    if birthday.month == 2 and birthday.day == 29:  # celebrated on the 28th in common years
        leap = today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0)
        return today.day == (29 if leap else 28)
    return today.day == birthday.day


class RuleProperties(BaseModel):
    """Conditions every kind shares: limit a rule to some channels or stores (empty: all)."""

    model_config = KIND_MODEL_CONFIG

    kind: str
    channels: list[Code] = Field(default_factory=list, max_length=50)
    store_ids: list[Code] = Field(default_factory=list, max_length=500)

    def matches(self, context: EarnContext) -> bool:
        if self.channels and context.channel not in self.channels:
            return False
        return not (self.store_ids and context.store_id not in self.store_ids)

    def bonus(self, context: EarnContext) -> Fraction | None:
        return None


class BaseRate(RuleProperties):
    """Replaces the programme's earn rate where it applies (the highest-priority match wins)."""

    kind: Literal["base_rate"] = "base_rate"
    rate: Rate


class _ItemBonus(RuleProperties):
    multiplier: Multiplier | None = Field(default=None, description="Points × this on matching items.")
    points_per_unit: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Fixed points per unit paid for: a line at no price (a free gift) earns none.",
    )

    @model_validator(mode="after")
    def _one_way(self) -> _ItemBonus:
        if (self.multiplier is None) == (self.points_per_unit is None):
            raise ValueError("give either multiplier or points_per_unit")
        return self

    def _bonus_on(self, items: Sequence[EarnItem], context: EarnContext) -> Fraction | None:
        if not items:
            return None
        if self.points_per_unit is not None:
            # Units paid for: a free gift's line earns no points a unit, as it earns no multiplied points.
            paid_units = sum(item.quantity for item in items if item.line_total.amount_minor > 0)
            return Fraction(self.points_per_unit * paid_units)
        assert self.multiplier is not None
        listed = sum((item.line_total.major() for item in items), Decimal(0))
        return Fraction(listed * context.base_rate * (self.multiplier - 1)) * context.paid_share


class CategoryBonus(_ItemBonus):
    kind: Literal["category_bonus"] = "category_bonus"
    categories: list[Code] = Field(min_length=1, max_length=200)

    def bonus(self, context: EarnContext) -> Fraction | None:
        wanted = set(self.categories)
        return self._bonus_on([i for i in context.items if i.category in wanted], context)


class SkuBonus(_ItemBonus):
    kind: Literal["sku_bonus"] = "sku_bonus"
    skus: list[Code] = Field(min_length=1, max_length=1000)

    def bonus(self, context: EarnContext) -> Fraction | None:
        wanted = set(self.skus)
        return self._bonus_on([i for i in context.items if i.sku in wanted], context)


class BirthdayBonus(RuleProperties):
    kind: Literal["birthday"] = "birthday"
    multiplier: Multiplier
    period: Literal["day", "month"] = Field(description="On the birthday itself, or all through its month.")

    def bonus(self, context: EarnContext) -> Fraction | None:
        if context.birthday is None or not is_birthday(context.local_date, context.birthday, self.period):
            return None
        return Fraction(context.base_points * (self.multiplier - 1))


class MemberDay(RuleProperties):
    kind: Literal["member_day"] = "member_day"
    weekday: int = Field(ge=1, le=7, description="ISO weekday: 1 Monday … 7 Sunday")
    multiplier: Multiplier

    def bonus(self, context: EarnContext) -> Fraction | None:
        if context.local_date.isoweekday() != self.weekday:
            return None
        return Fraction(context.base_points * (self.multiplier - 1))


AnyRuleProperties = Annotated[
    BaseRate | CategoryBonus | SkuBonus | BirthdayBonus | MemberDay, Field(discriminator="kind")
]
RuleKind = Literal["base_rate", "category_bonus", "sku_bonus", "birthday", "member_day"]
PROPERTIES_ADAPTER: TypeAdapter[RuleProperties] = TypeAdapter(AnyRuleProperties)
RULE_KINDS = (BaseRate, CategoryBonus, SkuBonus, BirthdayBonus, MemberDay)
