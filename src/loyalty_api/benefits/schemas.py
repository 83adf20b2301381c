from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from loyalty_api.benefits.service import BenefitDefinition, BenefitView, MemberBenefits
from loyalty_api.http.schemas import ReadModel, TierRef, by_kind
from loyalty_api.offers import BENEFIT_KINDS, BenefitKind, BenefitProperties
from loyalty_api.text import FilledText


class BenefitWriteBase(BaseModel):
    """A benefit: `kind` picks it, `properties` holds that kind's settings. Money amounts are minor units of
    the programme's currency."""

    model_config = ConfigDict(extra="forbid")

    name: FilledText = Field(max_length=100)
    kind: BenefitKind
    properties: BenefitProperties
    active: bool = True

    def definition(self) -> BenefitDefinition:
        return BenefitDefinition(name=self.name, properties=self.properties, active=self.active)


if TYPE_CHECKING:
    BenefitWrite = BenefitWriteBase
else:
    BenefitWrite = by_kind(BenefitWriteBase, BENEFIT_KINDS, suffix="Benefit")


class BenefitSourceRead(ReadModel):
    type: str = Field(description="`tier`, `plan` or `partner`")
    ref: str = Field(description="The source's code: the tier's, the plan's or the partner's")
    name: str


class BenefitRead(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    properties: dict[str, Any]
    active: bool
    sources: list[BenefitSourceRead]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: BenefitView) -> BenefitRead:
        return cls(
            id=view.id,
            name=view.name,
            kind=view.properties.kind,
            properties=view.properties.model_dump(mode="json", exclude={"kind"}),
            active=view.active,
            sources=[BenefitSourceRead.model_validate(s) for s in view.sources],
            created_at=view.created_at,
            updated_at=view.updated_at,
        )


class BenefitList(BaseModel):
    items: list[BenefitRead]
    next_cursor: str | None


class EffectiveBenefitRead(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    properties: dict[str, Any]
    sources: list[BenefitSourceRead]


class MemberBenefitsRead(BaseModel):
    member_id: uuid.UUID
    tier: TierRef | None
    plans: list[str] = Field(description="Codes of the paid plans whose benefits the member has now")
    benefits: list[EffectiveBenefitRead]

    @classmethod
    def of(cls, found: MemberBenefits) -> MemberBenefitsRead:
        return cls(
            member_id=found.member_id,
            tier=None if found.tier is None else TierRef.model_validate(found.tier),
            plans=found.plan_codes,
            benefits=[
                EffectiveBenefitRead(
                    id=b.id,
                    name=b.name,
                    kind=b.properties.kind,
                    properties=b.properties.model_dump(mode="json", exclude={"kind"}),
                    sources=[BenefitSourceRead.model_validate(s) for s in b.sources],
                )
                for b in found.benefits
            ],
        )
