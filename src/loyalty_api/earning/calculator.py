"""How many points a purchase earns, line by line. Pure: no I/O, no clock.

1. Base: amount × rate, where rate is the highest-priority matching `base_rate` rule's, else the
   programme's earn rate.
2. Multipliers of the member's standing: base × (factor − 1) each, for the tier's points multiplier and for
   each points-multiplier benefit the member has (they add up, they do not compound).
3. Bonus rules, highest priority first (ties: older rule first). A stackable rule adds its bonus and the walk
   goes on. A non-stackable rule applies alone: only when no bonus has applied yet, and then it ends the walk.
   A rule whose bonus comes to no points (after rounding) has not applied: no line, and it blocks nothing.
Each line is rounded on its own with the programme's rounding, so the lines always add up to the total.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

from loyalty_api.earning.kinds import BaseRate, EarnContext, EarnItem, RuleProperties
from loyalty_api.money import Money, Rounding, round_points


@dataclass(frozen=True, slots=True)
class ActiveRule:
    id: uuid.UUID
    name: str
    priority: int
    stackable: bool
    properties: RuleProperties


@dataclass(frozen=True, slots=True)
class BreakdownLine:
    rule: str
    kind: str
    points: int
    rule_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Multiplier:
    """Base points × `factor` from the member's standing: their tier, or a points-multiplier benefit."""

    name: str
    kind: str  # tier_multiplier | points_multiplier
    factor: Decimal
    source_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Purchase:
    amount: Money
    items: Sequence[EarnItem]
    channel: str | None
    store_id: str | None
    local_date: date
    birthday: date | None


def calculate(
    purchase: Purchase,
    *,
    rules: Sequence[ActiveRule],
    program_rate: Decimal,
    rounding: Rounding,
    multipliers: Sequence[Multiplier] = (),
) -> list[BreakdownLine]:
    ordered = sorted(rules, key=lambda r: (-r.priority, r.id))
    probe = _context(purchase, program_rate)
    base_rule, rate = next(
        (
            (r, r.properties.rate)
            for r in ordered
            if isinstance(r.properties, BaseRate) and r.properties.matches(probe)
        ),
        (None, program_rate),
    )
    context = _context(purchase, rate)
    lines = [
        BreakdownLine(
            rule=base_rule.name if base_rule else "base",
            kind="base_rate",
            points=round_points(context.base_points, rounding),
            rule_id=base_rule.id if base_rule else None,
        )
    ]
    lines.extend(
        BreakdownLine(
            rule=m.name,
            kind=m.kind,
            points=round_points(context.base_points * (m.factor - 1), rounding),
            rule_id=m.source_id,
        )
        for m in multipliers
        if m.factor != 1
    )
    applied = False
    for rule in ordered:
        if isinstance(rule.properties, BaseRate) or not rule.properties.matches(context):
            continue
        if not rule.stackable and applied:
            continue
        extra = rule.properties.bonus(context)
        if extra is None:
            continue
        points = round_points(extra, rounding)
        # A rule that gives no points (a free gift in its category, a multiplier of 1, a bonus that rounds
        # to none) has not applied: it shows no line, and an exclusive one must not cancel the bonuses below.
        if points == 0:
            continue
        applied = True
        lines.append(BreakdownLine(rule=rule.name, kind=rule.properties.kind, points=points, rule_id=rule.id))
        if not rule.stackable:
            break
    return lines


def _context(purchase: Purchase, rate: Decimal) -> EarnContext:
    return EarnContext(
        amount=purchase.amount,
        items=purchase.items,
        channel=purchase.channel,
        store_id=purchase.store_id,
        local_date=purchase.local_date,
        birthday=purchase.birthday,
        base_rate=rate,
        base_points=purchase.amount.major() * rate,
        paid_share=_paid_share(purchase),
    )


def _paid_share(purchase: Purchase) -> Fraction:
    listed = sum(item.line_total.amount_minor for item in purchase.items)
    if listed <= purchase.amount.amount_minor:
        return Fraction(1)
    return Fraction(purchase.amount.amount_minor, listed)
