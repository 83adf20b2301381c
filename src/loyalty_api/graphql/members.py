"""The Member entity (Apollo Federation keys `id` and `memberNumber`) and member queries."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from loyalty_api.errors import InvalidField
from loyalty_api.graphql.benefits import MemberBenefitFields
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.cost import assumed
from loyalty_api.graphql.coupons import MemberCouponFields
from loyalty_api.graphql.errors import as_graphql_error, domain_errors, require
from loyalty_api.graphql.money import Long
from loyalty_api.graphql.points import MemberPointsFields
from loyalty_api.graphql.scopes import READERS
from loyalty_api.graphql.subscriptions import MemberSubscriptionFields
from loyalty_api.graphql.tiers import Tier
from loyalty_api.http.edge import misses_counted
from loyalty_api.members import member_number as card
from loyalty_api.members.errors import InvalidMemberNumber, MemberNotFound
from loyalty_api.members.service import MemberProfile

PERSONAL = "personal"


def personal(*, list_size: int | None = None) -> Any:
    """A field holding personal data, tagged `personal`: a partner-facing contract of the supergraph leaves
    every field with the tag out (Apollo contracts, `excludeTags: ["personal"]`)."""
    directives = [] if list_size is None else [assumed(list_size)]
    return strawberry.federation.field(tags=[PERSONAL], directives=directives)


@strawberry.type
class ExternalId:
    system: str
    external_id: str


@strawberry.federation.type(keys=["id", "memberNumber"])
class Member(MemberPointsFields, MemberBenefitFields, MemberCouponFields, MemberSubscriptionFields):
    """A member of the programme. Its relations (points, benefits, coupons, subscriptions) come from the
    `Member*Fields` of their own modules, each read through the request's DataLoaders."""

    id: strawberry.ID
    member_number: str
    status: str
    tier: Tier | None
    points: Long = strawberry.field(description="Points balance.")
    name: str | None = personal()
    phone: str | None = personal()
    email: str | None = personal()
    birthday: datetime.date | None = personal()
    channel: str
    marketing_consent: bool
    external_ids: list[ExternalId] = personal(list_size=5)
    created_at: datetime.datetime

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
    profile = await info.context.loaders.members.load(parsed)
    return None if profile is None else Member.of(profile)


async def member_by_number(info: Info[GraphQLContext, None], member_number: str) -> Member | None:
    principal = require(info.context, *READERS)
    if not card.is_valid(member_number):
        raise as_graphql_error(InvalidMemberNumber())
    limiter = info.context.rate_limiter
    with domain_errors():  # a spent misses budget is an error with the REST code, rate_limited
        try:
            async with misses_counted(limiter, principal):
                profile = await info.context.loaders.members_by_number.load(member_number)
                if profile is None:
                    raise MemberNotFound()  # counted as a miss
        except MemberNotFound:
            return None
    return Member.of(profile)


async def _member(info: Info[GraphQLContext, None], id: strawberry.ID) -> Member | None:
    return await member_by_id(info, str(id))


async def _member_by_number(info: Info[GraphQLContext, None], member_number: str) -> Member | None:
    return await member_by_number(info, member_number)


@strawberry.type
class MemberQueries:
    loyalty_member: Member | None = strawberry.field(
        resolver=_member, description="A member by id; null when none."
    )
    loyalty_member_by_number: Member | None = strawberry.field(
        resolver=_member_by_number, description="A member by card number; null when none."
    )
