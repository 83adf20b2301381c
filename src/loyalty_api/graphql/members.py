"""The Member entity (Apollo Federation keys `id` and `memberNumber`) and member queries."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from loyalty_api.auth.principal import Scope
from loyalty_api.benefits.service import member_benefits
from loyalty_api.errors import InvalidField
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.errors import as_graphql_error, domain_errors, require
from loyalty_api.graphql.money import Long
from loyalty_api.http.edge import misses_counted
from loyalty_api.members import service
from loyalty_api.members.errors import MemberNotFound
from loyalty_api.members.service import MemberProfile
from loyalty_api.subscriptions.service import list_member_subscriptions
from loyalty_api.tiers.ladder import TierRef

READERS = (Scope.admin, Scope.pos, Scope.ecommerce)


@strawberry.type(description="A tier as every reply shows one (REST and webhooks too): code, name, rank.")
class Tier:
    code: str
    name: str
    rank: int = strawberry.field(description="Higher is better; the lowest rank is everyone's entry tier.")

    @classmethod
    def of(cls, tier: TierRef) -> Tier:
        return cls(code=tier.code, name=tier.name, rank=tier.rank)


@strawberry.type
class ExternalId:
    system: str
    external_id: str


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
    sources: list[BenefitSource]


@strawberry.type
class MemberSubscription:
    id: strawberry.ID
    plan: str
    plan_name: str
    state: str
    period: int
    period_end: datetime.datetime
    benefits_until: datetime.datetime | None
    cancel_at_period_end: bool


async def _benefits(root: Member, info: Info[GraphQLContext, None]) -> list[MemberBenefit]:
    require(info.context, *READERS)
    async with info.context.units.read() as uow:
        with domain_errors():
            found = await member_benefits(uow, uuid.UUID(str(root.id)))
    return [
        MemberBenefit(
            id=strawberry.ID(str(b.id)),
            name=b.name,
            kind=b.properties.kind,
            sources=[BenefitSource(type=s.type, ref=s.ref, name=s.name) for s in b.sources],
        )
        for b in found.benefits
    ]


async def _subscriptions(
    root: Member, info: Info[GraphQLContext, None], first: int = 20
) -> list[MemberSubscription]:
    require(info.context, *READERS)
    async with info.context.units.read() as uow:
        with domain_errors():
            page = await list_member_subscriptions(
                uow, uuid.UUID(str(root.id)), limit=max(1, min(first, 100)), cursor=None
            )
    return [
        MemberSubscription(
            id=strawberry.ID(str(s.id)),
            plan=s.plan.code,
            plan_name=s.plan.name,
            state=s.state,
            period=s.period,
            period_end=s.period_end,
            benefits_until=s.benefits_until,
            cancel_at_period_end=s.cancel_at_period_end,
        )
        for s in page.items
    ]


@strawberry.federation.type(keys=["id", "memberNumber"])
class Member:
    id: strawberry.ID
    member_number: str
    status: str
    tier: Tier | None
    points: Long = strawberry.field(description="Points balance.")
    name: str | None
    phone: str | None
    email: str | None
    birthday: datetime.date | None
    channel: str
    marketing_consent: bool
    external_ids: list[ExternalId]
    created_at: datetime.datetime

    benefits: list[MemberBenefit] = strawberry.field(
        resolver=_benefits, description="The benefits in force now, each with its sources (tier, paid plans)."
    )
    subscriptions: list[MemberSubscription] = strawberry.field(
        resolver=_subscriptions, description="Paid-membership subscriptions, newest first."
    )

    @classmethod
    def of(cls, profile: MemberProfile) -> Member:
        tier = profile.tier
        return cls(
            id=strawberry.ID(str(profile.id)),
            member_number=profile.member_number,
            status=profile.status.value,
            tier=None if tier is None else Tier.of(tier),
            points=Long(profile.points),
            name=profile.name,
            phone=profile.phone,
            email=profile.email,
            birthday=profile.birthday,
            channel=profile.channel,
            marketing_consent=profile.marketing_consent,
            external_ids=[ExternalId(system=s, external_id=e) for s, e in profile.external_ids.items()],
            created_at=profile.created_at,
        )

    @classmethod
    async def resolve_reference(
        cls, info: Info[GraphQLContext, None], **representation: Any
    ) -> Member | None:
        if "id" in representation:
            return await member_by_id(info, str(representation["id"]))
        if "memberNumber" in representation:
            return await member_by_number(info, str(representation["memberNumber"]))
        require(info.context, *READERS)
        message = "a Member representation needs one of its key fields: `id` or `memberNumber`"
        raise as_graphql_error(InvalidField("representation", message))


def _parse_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def member_by_id(info: Info[GraphQLContext, None], member_id: str) -> Member | None:
    require(info.context, *READERS)
    parsed = _parse_id(member_id)
    if parsed is None:
        raise as_graphql_error(InvalidField("id", "must be a UUID"))
    async with info.context.units.read() as uow:
        try:
            return Member.of(await service.get_member(uow, parsed))
        except MemberNotFound:
            return None


async def member_by_number(info: Info[GraphQLContext, None], member_number: str) -> Member | None:
    principal = require(info.context, *READERS)
    limiter = info.context.rate_limiter
    with domain_errors():  # a spent misses budget is an error with the REST code, rate_limited
        try:
            async with misses_counted(limiter, principal), info.context.units.read() as uow:
                return Member.of(await service.get_by_number(uow, member_number))
        except MemberNotFound:
            return None


async def _member(info: Info[GraphQLContext, None], id: strawberry.ID) -> Member | None:
    return await member_by_id(info, str(id))


async def _member_by_number(info: Info[GraphQLContext, None], member_number: str) -> Member | None:
    return await member_by_number(info, member_number)


@strawberry.type
class MemberQueries:
    member: Member | None = strawberry.field(resolver=_member, description="A member by id; null when none.")
    member_by_number: Member | None = strawberry.field(
        resolver=_member_by_number, description="A member by card number; null when none."
    )
