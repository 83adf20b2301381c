"""Paid-membership plans in GraphQL: the Plan entity (keyed by `code`) and the plans on sale, as GET
/v1/plans and /v1/plans/{code} give them."""

from __future__ import annotations

import datetime
from typing import Any

import strawberry
from pydantic import TypeAdapter
from strawberry.types import Info

from loyalty_api.errors import InvalidField
from loyalty_api.graphql.benefits import CouponOffer, coupon_offer
from loyalty_api.graphql.connections import Connection, cursor_of, page_size, paged
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.cost import assumed, sliced
from loyalty_api.graphql.enums import BenefitKindEnum
from loyalty_api.graphql.errors import as_graphql_error, require
from loyalty_api.graphql.ids import parse_code
from loyalty_api.graphql.money import Money
from loyalty_api.graphql.scopes import PAID_MEMBERSHIP_READERS
from loyalty_api.http.schemas import PlanCode
from loyalty_api.plan_catalogue.catalogue import CatalogPlan
from loyalty_api.plan_catalogue.catalogue import Interval as IntervalUnit
from loyalty_api.plan_catalogue.errors import PlanNotFound
from loyalty_api.plans import service
from loyalty_api.program.service import get_program

PlanIntervalUnit = strawberry.enum(IntervalUnit, name="PlanIntervalUnit")


@strawberry.type
class PlanInterval:
    unit: PlanIntervalUnit  # type: ignore[valid-type]
    count: int = strawberry.field(description="A period lasts `count` units.")


@strawberry.type
class PlanBenefit:
    id: strawberry.ID
    name: str
    kind: str = strawberry.field(graphql_type=BenefitKindEnum)
    active: bool


@strawberry.type(description="A coupon the plan gives its paying members, each period or each month of it.")
class PlanCoupon:
    name: str
    coupon: CouponOffer = strawberry.field(description="What each coupon gives, one type per kind.")
    valid_days: int
    every: str = strawberry.field(description="`period` or `month`")


@strawberry.type(description="A partner's perk the plan gives its paying members each paid period.")
class PlanPartnerPerk:
    partner: str = strawberry.field(description="The partner's code.")
    name: str = strawberry.field(description="What the member gets, e.g. a month of delivery.")
    source: str = strawberry.field(
        description="`ours`: we issue the code; `pool`: a code the partner uploaded for `perk`."
    )
    perk: str | None = strawberry.field(description="For `pool`: the perk's code. Null for `ours`.")


@strawberry.federation.type(keys=["code"], description="A paid-membership plan, active or not.")
class Plan:
    id: strawberry.ID
    code: str
    family: str = strawberry.field(description="Plans of one family replace each other on a plan change.")
    name: str
    price: Money = strawberry.field(description="Per period.")
    interval: PlanInterval
    trial_days: int
    grace_days: int
    benefits: list[PlanBenefit] = strawberry.field(directives=[assumed(10)])
    coupons: list[PlanCoupon] = strawberry.field(directives=[assumed(5)])
    partner_perks: list[PlanPartnerPerk] = strawberry.field(directives=[assumed(5)])
    active: bool = strawberry.field(description="Only active plans can be subscribed to.")
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @classmethod
    def of(cls, plan: CatalogPlan, currency: str) -> Plan:
        """`currency` is the programme's, which the coupons' money is in."""
        return cls(
            id=strawberry.ID(str(plan.id)),
            code=plan.code,
            family=plan.family,
            name=plan.name,
            price=Money.of(plan.price),
            interval=PlanInterval(unit=plan.interval, count=plan.interval_count),
            trial_days=plan.trial_days,
            grace_days=plan.grace_days,
            benefits=[
                PlanBenefit(id=strawberry.ID(str(b.id)), name=b.name, kind=b.properties.kind, active=b.active)
                for b in plan.benefits
            ],
            coupons=[
                PlanCoupon(
                    name=c.name,
                    coupon=coupon_offer(c.coupon, currency),
                    valid_days=c.valid_days,
                    every=c.every,
                )
                for c in plan.coupons
            ],
            partner_perks=[
                PlanPartnerPerk(partner=p.partner, name=p.name, source=p.source, perk=p.perk)
                for p in plan.partner_perks
            ],
            active=plan.active,
            created_at=plan.created_at,
            updated_at=plan.updated_at,
        )

    @classmethod
    async def resolve_reference(cls, info: Info[GraphQLContext, None], **representation: Any) -> Plan | None:
        require(info.context, *PAID_MEMBERSHIP_READERS)
        code = representation.get("code")
        if not isinstance(code, str):  # null or another shape is no key: not a lookup of its text
            message = "a Plan representation needs its key field `code`"
            raise as_graphql_error(InvalidField("representation", message))
        return await plan_by_code(info, code)


_PLAN_CODE: TypeAdapter[str] = TypeAdapter(PlanCode)


async def plan_by_code(info: Info[GraphQLContext, None], code: str) -> Plan | None:
    """A plan by code through the request's snapshot; null when there is none. A code no plan can have is
    REST's validation_error on `code` (GET /v1/plans/{code})."""
    code = parse_code(code, _PLAN_CODE, "code")
    async with info.context.snapshot.read() as uow:
        try:
            plan = await service.get_plan(uow, code)
        except PlanNotFound:
            return None
        return Plan.of(plan, (await get_program(uow)).currency)


async def _plans(
    info: Info[GraphQLContext, None], first: int = 20, after: str | None = None
) -> Connection[Plan]:
    require(info.context, *PAID_MEMBERSHIP_READERS)
    limit = page_size(first)
    with paged():  # a cursor that is not one of ours is a validation_error on `after`
        async with info.context.snapshot.read() as uow:
            page = await service.list_plans(uow, limit=limit, cursor=cursor_of(after))
            currency = (await get_program(uow)).currency
    # REST pages plans by code: an edge's cursor is its plan's key, as REST's next_cursor would be.
    return Connection.of(
        page.items, page.next_cursor, lambda p: Plan.of(p, currency), lambda p: page.cursor_after((p.code,))
    )


async def _plan(info: Info[GraphQLContext, None], code: str) -> Plan | None:
    require(info.context, *PAID_MEMBERSHIP_READERS)
    return await plan_by_code(info, code)


@strawberry.type
class PlanQueries:
    loyalty_plans: Connection[Plan] = strawberry.field(
        resolver=_plans,
        description="Every plan, active or not, by code, page by page: GET /v1/plans (its cursors too).",
        directives=[sliced(sized_fields=["edges"])],
    )
    loyalty_plan: Plan | None = strawberry.field(
        resolver=_plan, description="A plan by code; null when none: GET /v1/plans/{code}."
    )
