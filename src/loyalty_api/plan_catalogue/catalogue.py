"""The plans on sale, as every request reads them: pure values, cached per process like the tier ladder."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from loyalty_api.grants.granted import GrantedBenefit
from loyalty_api.money import Money
from loyalty_api.offers import CouponOffer
from loyalty_api.text import FilledText

PLANS_CACHE_KEY = "plans"


class Interval(StrEnum):
    month = "month"
    year = "year"


class RecurringCoupon(BaseModel):
    """A coupon a plan gives its paying members: once each period, or once each month of the period (a
    yearly card with a monthly coupon). Trial periods issue none."""

    # One schema for requests and replies (see loyalty_api.kinds).
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_mode_override="validation")

    name: FilledText = Field(max_length=100)
    coupon: CouponOffer
    valid_days: int = Field(default=30, ge=1, le=366, description="Each coupon is valid this many days.")
    every: Literal["period", "month"] = "period"


class PartnerPerkOffer(BaseModel):
    """A partner's perk the plan includes: each paid period, the member gets a code the partner redeems, one
    we issue (`ours`) or one from the pool of codes the partner uploaded for the perk (`pool`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_mode_override="validation")

    partner: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="The partner's code.")
    name: FilledText = Field(max_length=100, description="What the member gets, e.g. a month of delivery.")
    source: Literal["ours", "pool"] = Field(
        default="ours",
        description="`ours`: we issue the code; `pool`: a code the partner uploaded for `perk` "
        "(`POST /v1/partner/perk-codes`).",
    )
    perk: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$",
        description="For `pool`: the perk's code, which names the partner's pool of codes (plans may share "
        "one). Null for `ours`.",
    )

    @model_validator(mode="after")
    def _pool_names_its_perk(self) -> PartnerPerkOffer:
        if (self.source == "pool") != (self.perk is not None):
            raise PydanticCustomError("perk_for_pool", "`perk` is given for, and only for, source `pool`")
        return self


@dataclass(frozen=True, slots=True)
class CatalogPlan:
    id: uuid.UUID
    code: str
    family: str
    name: str
    price: Money
    interval: Interval
    interval_count: int
    trial_days: int
    grace_days: int
    coupons: tuple[RecurringCoupon, ...]
    partner_perks: tuple[PartnerPerkOffer, ...]
    benefits: tuple[GrantedBenefit, ...]
    active: bool
    created_at: datetime
    updated_at: datetime

    @property
    def months(self) -> int:
        """The length of one period in calendar months."""
        return self.interval_count * (12 if self.interval is Interval.year else 1)


@dataclass(frozen=True, slots=True)
class Catalogue:
    plans: tuple[CatalogPlan, ...]

    def by_id(self, plan_id: uuid.UUID | None) -> CatalogPlan | None:
        return next((p for p in self.plans if p.id == plan_id), None)

    def by_code(self, code: str) -> CatalogPlan | None:
        return next((p for p in self.plans if p.code == code), None)
