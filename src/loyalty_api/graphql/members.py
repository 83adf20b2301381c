"""The Member entity (Apollo Federation keys `id` and `memberNumber`) and member queries."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from loyalty_api.auth.principal import Scope
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.errors import domain_errors, require
from loyalty_api.members import service
from loyalty_api.members.errors import MemberNotFound
from loyalty_api.members.service import MemberProfile

READERS = (Scope.admin, Scope.pos, Scope.ecommerce)


@strawberry.type
class Tier:
    code: str
    name: str
    rank: int


@strawberry.type
class ExternalId:
    system: str
    external_id: str


@strawberry.federation.type(keys=["id", "memberNumber"])
class Member:
    id: strawberry.ID
    member_number: str
    status: str
    tier: Tier | None
    points: int
    name: str | None
    phone: str | None
    email: str | None
    birthday: datetime.date | None
    channel: str
    marketing_consent: bool
    external_ids: list[ExternalId]
    created_at: datetime.datetime

    @classmethod
    def of(cls, profile: MemberProfile) -> Member:
        tier = profile.tier
        return cls(
            id=strawberry.ID(str(profile.id)),
            member_number=profile.member_number,
            status=profile.status.value,
            tier=None if tier is None else Tier(code=tier.code, name=tier.name, rank=tier.rank),
            points=profile.points,
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
        return await member_by_number(info, str(representation.get("memberNumber", "")))


def _parse_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def member_by_id(info: Info[GraphQLContext, None], member_id: str) -> Member | None:
    require(info.context, *READERS)
    parsed = _parse_id(member_id)
    if parsed is None:
        return None
    async with info.context.units.read() as uow:
        try:
            return Member.of(await service.get_member(uow, parsed))
        except MemberNotFound:
            return None


async def member_by_number(info: Info[GraphQLContext, None], member_number: str) -> Member | None:
    require(info.context, *READERS)
    async with info.context.units.read() as uow:
        with domain_errors():
            try:
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
