"""A partner's view of the members linked to it: the `PartnerMember` entity, keyed by the partner's own
customer reference, so a partner's supergraph joins its customer type to it. Partner keys only; a reference
the partner has not linked is null, whoever it might name."""

from __future__ import annotations

import datetime
from typing import Any

import strawberry
from pydantic import TypeAdapter, ValidationError
from strawberry.types import Info

from loyalty_api.auth.principal import Scope
from loyalty_api.coalition import service
from loyalty_api.coalition.schemas import CustomerRef, PartnerMemberRead
from loyalty_api.errors import InvalidField
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.cost import assumed, unbatched
from loyalty_api.graphql.enums import BenefitKindEnum
from loyalty_api.graphql.errors import as_graphql_error, domain_errors, require
from loyalty_api.graphql.members import MemberStatusValue
from loyalty_api.graphql.money import Long
from loyalty_api.graphql.tiers import Tier
from loyalty_api.http.problems import described
from loyalty_api.partners.errors import LinkNotFound

_REF: TypeAdapter[str] = TypeAdapter(CustomerRef)


@strawberry.type
class PartnerPoints:
    balance: Long
    available: Long


@strawberry.type(description="One of the calling partner's joint benefits the member is entitled to now.")
class JointBenefit:
    id: strawberry.ID
    name: str
    kind: BenefitKindEnum


@strawberry.federation.type(
    keys=["partnerCustomerRef"],
    # Each one read on its own (the link, the member, the tier, plans, joint benefits): 5 statements, so a
    # hundred representations in `_entities` are priced as the reads they make, not as one.
    directives=[unbatched(5)],
    description="A member linked to the calling partner, as GET /v1/partner/members/{ref} shows them: never "
    "personal data, and points only if the member granted them.",
)
class PartnerMember:
    partner_customer_ref: str
    member_id: strawberry.ID
    status: MemberStatusValue  # type: ignore[valid-type]
    tier: Tier | None
    paid_plans: list[str] = strawberry.field(description="Codes of the paid plans in force.")
    joint_benefits: list[JointBenefit] = strawberry.field(directives=[assumed(10)])
    points: PartnerPoints | None = strawberry.field(description="Null unless the member granted `points`.")
    grants: list[str] = strawberry.field(directives=[assumed(2)])
    linked_at: datetime.datetime

    @classmethod
    def of(cls, read: PartnerMemberRead) -> PartnerMember:
        points = read.points
        return cls(
            partner_customer_ref=read.partner_customer_ref,
            member_id=strawberry.ID(str(read.member_id)),
            status=read.status,
            tier=Tier.of_read(read.tier),
            paid_plans=list(read.paid_plans),
            joint_benefits=[
                JointBenefit(id=strawberry.ID(str(b.id)), name=b.name, kind=b.kind)
                for b in read.joint_benefits
            ],
            points=None
            if points is None
            else PartnerPoints(balance=Long(points.balance), available=Long(points.available)),
            grants=list(read.grants),
            linked_at=read.linked_at,
        )

    @classmethod
    async def resolve_reference(
        cls, info: Info[GraphQLContext, None], **representation: Any
    ) -> PartnerMember | None:
        require(info.context, Scope.partner)
        ref = representation.get("partnerCustomerRef")
        if not isinstance(ref, str):
            message = "a PartnerMember representation needs its key field `partnerCustomerRef`"
            raise as_graphql_error(InvalidField("representation", message))
        return await partner_member(info, ref, field="partnerCustomerRef")


def _checked_ref(ref: str, field: str) -> str:
    """A reference as REST's path takes it (`CustomerRef`): one that no link can have (a space, a slash, past
    64 characters, empty) is the validation_error REST answers, not a null that reads as "not linked"."""
    try:
        return _REF.validate_python(ref)
    except ValidationError as exc:
        _, message = described(exc.errors(include_url=False)[0])  # says nothing of the value
        raise as_graphql_error(InvalidField(field, message)) from None


async def partner_member(
    info: Info[GraphQLContext, None], ref: str, *, field: str = "ref"
) -> PartnerMember | None:
    principal = require(info.context, Scope.partner)
    assert principal.partner_id is not None  # a partner key names its partner
    ref = _checked_ref(ref, field)
    async with info.context.snapshot.read() as uow:
        with domain_errors():  # a suspended partner: partner_not_active
            try:
                view = await service.partner_view(uow, principal.partner_id, ref)
            except LinkNotFound:
                return None
    return PartnerMember.of(PartnerMemberRead.model_validate(view))


async def _partner_member(info: Info[GraphQLContext, None], ref: str) -> PartnerMember | None:
    return await partner_member(info, ref)


@strawberry.type
class PartnerQueries:
    loyalty_partner_member: PartnerMember | None = strawberry.field(
        resolver=_partner_member,
        description="The member you linked as `ref` (partner keys): null for any reference you have not "
        "linked.",
    )
