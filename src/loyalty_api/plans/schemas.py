from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from loyalty_api.http.schemas import MoneyBody, MoneyRead, PlanCode
from loyalty_api.plan_catalogue.catalogue import CatalogPlan, Interval, PartnerPerkOffer, RecurringCoupon
from loyalty_api.plans.service import PlanDefinition
from loyalty_api.text import FilledText
from loyalty_api.tiers.schemas import BenefitRef


class IntervalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: Interval
    count: int = Field(default=1, strict=True, ge=1, le=36, description="Periods last `count` units.")


class PlanWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: FilledText = Field(max_length=100)
    price: MoneyBody = Field(
        description="Per period. A new price applies from each subscription's next period."
    )
    interval: IntervalBody
    trial_days: int = Field(default=0, strict=True, ge=0, le=366, description="0: no trial.")
    grace_days: int = Field(
        default=7,
        strict=True,
        ge=0,
        le=90,
        description="After an unpaid period end, benefits last this long.",
    )
    benefit_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    coupons: list[RecurringCoupon] = Field(default_factory=list, max_length=20)
    partner_perks: list[PartnerPerkOffer] = Field(
        default_factory=list,
        max_length=10,
        description="Partners' perks the plan includes: each paid period (not a trial) the member gets a "
        "code per perk, which the partner redeems (`POST /v1/partner/perks/{code}/redeem`); the partner is "
        "told by `partner.perk_granted`.",
    )
    active: bool = Field(default=True, description="Only active plans can be subscribed to.")

    def definition(self) -> PlanDefinition:
        return PlanDefinition(
            name=self.name,
            price=self.price.money(),
            interval=self.interval.unit,
            interval_count=self.interval.count,
            trial_days=self.trial_days,
            grace_days=self.grace_days,
            benefit_ids=self.benefit_ids,
            coupons=self.coupons,
            partner_perks=self.partner_perks,
            active=self.active,
        )


class PlanCreate(PlanWrite):
    code: PlanCode
    family: PlanCode | None = Field(
        default=None,
        description="Plans of one family replace each other (upgrade, downgrade); a member holds one live "
        "subscription per family. Defaults to the code; fixed once created.",
    )


class IntervalRead(BaseModel):
    unit: Interval
    count: int


class PlanRead(BaseModel):
    id: uuid.UUID
    code: str
    family: str
    name: str
    price: MoneyRead
    interval: IntervalRead
    trial_days: int
    grace_days: int
    benefits: list[BenefitRef]
    coupons: list[RecurringCoupon]
    partner_perks: list[PartnerPerkOffer]
    active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, plan: CatalogPlan) -> PlanRead:
        return cls(
            id=plan.id,
            code=plan.code,
            family=plan.family,
            name=plan.name,
            price=MoneyRead.model_validate(plan.price),
            interval=IntervalRead(unit=plan.interval, count=plan.interval_count),
            trial_days=plan.trial_days,
            grace_days=plan.grace_days,
            benefits=[
                BenefitRef(id=b.id, name=b.name, kind=b.properties.kind, active=b.active)
                for b in plan.benefits
            ],
            coupons=list(plan.coupons),
            partner_perks=list(plan.partner_perks),
            active=plan.active,
            created_at=plan.created_at,
            updated_at=plan.updated_at,
        )


class PlanList(BaseModel):
    items: list[PlanRead]
    next_cursor: str | None
