"""A member's benefits in GraphQL: what they have now, with where each comes from."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from loyalty_api.benefits.service import EffectiveBenefit
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.cost import assumed
from loyalty_api.graphql.errors import require
from loyalty_api.graphql.scopes import READERS


@strawberry.type
class BenefitSource:
    type: str = strawberry.field(description="tier or plan")
    ref: str = strawberry.field(description="The tier's or plan's code")
    name: str


@strawberry.type
class MemberBenefit:
    id: strawberry.ID
    name: str
    kind: str
    sources: list[BenefitSource] = strawberry.field(directives=[assumed(3)])

    @classmethod
    def of(cls, benefit: EffectiveBenefit) -> MemberBenefit:
        return cls(
            id=strawberry.ID(str(benefit.id)),
            name=benefit.name,
            kind=benefit.properties.kind,
            sources=[BenefitSource(type=s.type, ref=s.ref, name=s.name) for s in benefit.sources],
        )


async def _benefits(root: Any, info: Info[GraphQLContext, None]) -> list[MemberBenefit]:
    require(info.context, *READERS)
    found = await info.context.loaders.benefits.load(uuid.UUID(str(root.id)))
    return [] if found is None else [MemberBenefit.of(b) for b in found.benefits]


@strawberry.type
class MemberBenefitFields:
    """Member's benefit fields (Member inherits them)."""

    benefits: list[MemberBenefit] = strawberry.field(
        resolver=_benefits,
        description="The benefits in force now, each with its sources (tier, paid plans).",
        directives=[assumed(20)],
    )
