"""The Member entity (Apollo Federation keys `id` and `memberNumber`) and member queries."""

from __future__ import annotations

import datetime
from typing import Any

import strawberry
from pydantic import TypeAdapter, ValidationError
from strawberry.types import Info

from loyalty_api.errors import InvalidField
from loyalty_api.graphql.benefits import MemberBenefitFields
from loyalty_api.graphql.connections import Connection, cursor_of, page_size, paged
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.cost import assumed, sliced
from loyalty_api.graphql.coupons import MemberCouponFields
from loyalty_api.graphql.errors import as_graphql_error, domain_errors, require
from loyalty_api.graphql.ids import parse_id
from loyalty_api.graphql.money import Long
from loyalty_api.graphql.partner_links import MemberPartnerLinkFields
from loyalty_api.graphql.points import MemberPointsFields
from loyalty_api.graphql.scopes import OPERATORS, READERS
from loyalty_api.graphql.subscriptions import MemberSubscriptionFields
from loyalty_api.graphql.tiers import MemberTierFields, Tier
from loyalty_api.http.edge import misses_counted
from loyalty_api.http.problems import described
from loyalty_api.members import member_number as card
from loyalty_api.members.errors import MemberNotFound
from loyalty_api.members.lifecycle import Stage
from loyalty_api.members.models import MemberStatus, Segment
from loyalty_api.profiles import service
from loyalty_api.profiles.errors import InvalidMemberNumber
from loyalty_api.profiles.schemas import MemberRead
from loyalty_api.profiles.service import MemberProfile
from loyalty_api.tiers.schemas import TierCode

PERSONAL = "personal"
MemberStatusValue = strawberry.enum(MemberStatus, description="active, suspended or closed.")
LifecycleStage = strawberry.enum(
    Stage, name="LifecycleStage", description="new, active, at_risk, lapsed or churned."
)
RfmSegment = strawberry.enum(
    Segment, name="RfmSegment", description="A member's RFM segment (GET /v1/segments)."
)


def personal(*, list_size: int | None = None) -> Any:
    """A field holding personal data, tagged `personal`: a partner-facing contract of the supergraph leaves
    every field with the tag out (Apollo contracts, `excludeTags: ["personal"]`)."""
    directives = [] if list_size is None else [assumed(list_size)]
    return strawberry.federation.field(tags=[PERSONAL], directives=directives)


@strawberry.type
class ExternalId:
    system: str
    external_id: str


@strawberry.type(description="Where the member is in their life with the programme.")
class Lifecycle:
    stage: str = strawberry.field(
        description="new (no purchase yet), active, at_risk, lapsed or churned: from the days since the last "
        "purchase and the programme's thresholds."
    )
    since: datetime.datetime | None = strawberry.field(
        description="When the member entered this stage (null: not assessed yet)."
    )


@strawberry.federation.type(keys=["id", "memberNumber"])
class Member(
    MemberPointsFields,
    MemberTierFields,
    MemberBenefitFields,
    MemberCouponFields,
    MemberSubscriptionFields,
    MemberPartnerLinkFields,
):
    """A member of the programme. Its relations (points, tier status, benefits, coupons, subscriptions,
    partner links) come from the `Member*Fields` of their own modules, read through the request's snapshot
    and DataLoaders."""

    id: strawberry.ID
    member_number: str = strawberry.field(
        description="The card number: ten digits, the last a Luhn check digit."
    )
    status: MemberStatusValue  # type: ignore[valid-type]
    tier: Tier | None
    points: Long = strawberry.field(description="Points balance.")
    name: str | None = personal()
    phone: str | None = personal()
    email: str | None = personal()
    birthday: datetime.date | None = personal()
    channel: str
    marketing_consent: bool
    leaderboard_opt_in: bool = strawberry.field(
        description="The member agreed to appear on the leaderboard (by a masked card number, never by name)."
    )
    external_ids: list[ExternalId] = personal(list_size=5)
    referral_code: str = strawberry.field(description="The code this member gives to refer others.")
    referred_by: strawberry.ID | None = strawberry.field(description="The member who referred this one.")
    lifecycle: Lifecycle
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @classmethod
    def of(cls, member: MemberRead) -> Member:
        """A member as REST's reply shows them (a replayed mutation has only that)."""
        return cls(
            id=strawberry.ID(str(member.id)),
            member_number=member.member_number,
            status=member.status,
            tier=Tier.of_read(member.tier),
            points=Long(member.points),
            name=member.name,
            phone=member.phone,
            email=member.email,
            birthday=member.birthday,
            channel=member.channel,
            marketing_consent=member.marketing_consent,
            leaderboard_opt_in=member.leaderboard_opt_in,
            external_ids=[ExternalId(system=s, external_id=e) for s, e in member.external_ids.items()],
            referral_code=member.referral_code,
            referred_by=None if member.referred_by is None else strawberry.ID(str(member.referred_by)),
            lifecycle=Lifecycle(stage=member.lifecycle.stage.value, since=member.lifecycle.since),
            created_at=member.created_at,
            updated_at=member.updated_at,
        )

    @classmethod
    def of_profile(cls, profile: MemberProfile) -> Member:
        return cls.of(MemberRead.model_validate(profile))

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


async def member_by_id(info: Info[GraphQLContext, None], member_id: str) -> Member | None:
    require(info.context, *READERS)
    profile = await info.context.loaders.members.load(parse_id(member_id, "id"))
    return None if profile is None else Member.of_profile(profile)


async def member_by_number(info: Info[GraphQLContext, None], member_number: str) -> Member | None:
    require(info.context, *READERS)
    member_number = card.as_typed(member_number)
    if not card.is_valid(member_number):
        raise as_graphql_error(InvalidMemberNumber())
    with domain_errors():  # a spent misses budget is an error with the REST code, rate_limited
        profile = await info.context.loaders.members_by_number.load(member_number)
    return None if profile is None else Member.of_profile(profile)


async def _member(info: Info[GraphQLContext, None], id: strawberry.ID) -> Member | None:
    return await member_by_id(info, str(id))


async def _member_by_number(info: Info[GraphQLContext, None], member_number: str) -> Member | None:
    return await member_by_number(info, member_number)


async def _member_lookup(
    info: Info[GraphQLContext, None],
    member_number: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    external_system: str | None = None,
    external_id: str | None = None,
    qr_code: str | None = None,
) -> Member | None:
    principal = require(info.context, *READERS)
    limiter = info.context.rate_limiter
    # An identifier sent empty is left out, as REST's `?phone=`: what a client sends for one it has none of.
    member_number, phone, email = member_number or None, phone or None, email or None
    external_system, external_id, qr_code = external_system or None, external_id or None, qr_code or None
    given = {
        "memberNumber": member_number,
        "phone": phone,
        "email": email,
        "externalSystem": external_system,
        "externalId": external_id,
        "qrCode": qr_code,
    }
    _check_lengths(given)
    with domain_errors():
        if phone is not None or email is not None:
            await limiter.spend(limiter.contact_lookup, principal.key_lineage)
        try:
            # The snapshot first: aliased lookups then take turns, each seeing the misses of those before.
            async with info.context.snapshot.read() as uow, misses_counted(limiter, principal):
                profile = await service.lookup(
                    uow,
                    member_number=member_number,
                    phone=phone,
                    email=email,
                    external_system=external_system,
                    external_id=external_id,
                    qr_code=qr_code,
                )
        except MemberNotFound:
            return None
    return Member.of_profile(profile)


# As GET /v1/members/lookup and GET /v1/members take them.
_LONGEST = {
    "memberNumber": 32,
    "phone": 32,
    "email": 254,
    "externalSystem": 32,
    "externalId": 64,
    "qrCode": 64,
    "tier": 32,
}


def _check_lengths(given: dict[str, str | None]) -> None:
    for name, value in given.items():
        if value is not None and len(value) > _LONGEST[name]:
            raise as_graphql_error(InvalidField(name, f"at most {_LONGEST[name]} characters"))


_TIER_CODE: TypeAdapter[str] = TypeAdapter(TierCode)


def _checked_tier(tier: str) -> str:
    """A tier's code as GET /v1/members takes it (`TierCode`, as every write naming a tier): `GOLD` is no
    tier's code, the validation_error REST answers rather than an empty page."""
    try:
        return _TIER_CODE.validate_python(tier)
    except ValidationError as exc:
        _, message = described(exc.errors(include_url=False)[0])
        raise as_graphql_error(InvalidField("tier", message)) from None


async def _members(
    info: Info[GraphQLContext, None],
    first: int = 20,
    after: str | None = None,
    tier: str | None = None,
    status: MemberStatusValue | None = None,  # type: ignore[valid-type]
    lifecycle: LifecycleStage | None = None,  # type: ignore[valid-type]
    segment: RfmSegment | None = None,  # type: ignore[valid-type]
    birthday_month: int | None = None,
) -> Connection[Member]:
    require(info.context, *OPERATORS)
    tier = tier or None  # as REST's `?tier=` and an empty `after`: what a client sends for none, no filter
    _check_lengths({"tier": tier})
    if tier is not None:
        tier = _checked_tier(tier)
    if birthday_month is not None and not 1 <= birthday_month <= 12:
        raise as_graphql_error(InvalidField("birthdayMonth", "must be 1 to 12"))
    async with info.context.snapshot.read() as uow:
        with paged():
            page = await service.list_members(
                uow,
                tier=tier,
                status=status,
                lifecycle=lifecycle,
                segment=segment,
                birthday_month=birthday_month,
                limit=page_size(first),
                cursor=cursor_of(after),
            )
    return Connection.of(page.items, page.next_cursor, Member.of_profile, lambda m: page.cursor_after(m.id))


@strawberry.type
class MemberQueries:
    loyalty_member: Member | None = strawberry.field(
        resolver=_member, description="A member by id; null when none."
    )
    loyalty_member_by_number: Member | None = strawberry.field(
        resolver=_member_by_number, description="A member by card number; null when none."
    )
    loyalty_member_lookup: Member | None = strawberry.field(
        resolver=_member_lookup,
        description="A member by exactly one identifier: `memberNumber`, `phone`, `email`, `qrCode` (what "
        "the member's app shows), or `externalSystem` with `externalId` (GET /v1/members/lookup, with its "
        "budgets); null when none.",
    )
    loyalty_members: Connection[Member] = strawberry.field(
        resolver=_members,
        description="Members page by page, oldest first, optionally on one tier (code), with one status, in "
        "one lifecycle stage, in one RFM segment or born in one birthday month (1–12), as GET /v1/members "
        "(a tier code no tier has is a validation_error, as there). For admin keys.",
        directives=[sliced(sized_fields=["edges"])],
    )
