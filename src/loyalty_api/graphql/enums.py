"""Enums several GraphQL types share, made from the domain's own lists so they cannot drift from REST: their
values are REST's strings (`percent_discount`, `not_yet_valid`)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, get_args

import strawberry

from loyalty_api.checkout.quote import AppliesTo, CappedBy
from loyalty_api.checkout.service import RejectReason
from loyalty_api.offers import BenefitKind


def values_enum(name: str, values: Iterable[str], description: str) -> Any:
    """A GraphQL enum whose names are its values, as REST writes them."""
    made: type[StrEnum] = StrEnum(name, {value: value for value in values})  # type: ignore[misc]
    return strawberry.enum(made, description=description)


BenefitKindEnum = values_enum("BenefitKind", get_args(BenefitKind), "What a benefit gives.")
DiscountSource = values_enum(
    "DiscountSource", ("tier", "plan", "partner", "coupon"), "Where a discount or perk comes from."
)
AppliesToEnum = values_enum("DiscountAppliesTo", get_args(AppliesTo), "What a discount takes money off.")
CappedByEnum = values_enum(
    "PointsCappedBy", get_args(CappedBy), "What limits the points a checkout may use (`none`: nothing)."
)
CouponRejectionReason = values_enum(
    "CouponRejectionReason",
    get_args(RejectReason),
    "Why a coupon was not applied: `not_found` (also another member's coupon), `used`, `expired`, "
    "`not_yet_valid`, or `conditions_not_met` (also when it would give nothing, the other discounts taking "
    "as much off without it).",
)
