"""Points over GraphQL: the same services, rules and answers as the points endpoints of REST."""

from __future__ import annotations

import datetime
import uuid

import strawberry
from strawberry.types import Info
from strawberry.types.unset import UNSET

from loyalty_api.auth.principal import Principal
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.cost import assumed
from loyalty_api.graphql.money import Long, MoneyInput
from loyalty_api.graphql.mutation import body_of, run_mutation
from loyalty_api.graphql.scopes import TILLS
from loyalty_api.graphql.tiers import Tier
from loyalty_api.graphql.user_errors import UserError
from loyalty_api.points import service
from loyalty_api.points.schemas import EarnRead, EarnRequest


class _Earn(EarnRequest):
    member_id: uuid.UUID


@strawberry.input
class EarnItemInput:
    sku: str | None = UNSET
    category: str | None = UNSET
    quantity: int
    unit_price: MoneyInput


@strawberry.input(description="A purchase that earns points, as the body of POST /v1/members/{id}/earn.")
class EarnPointsInput:
    member_id: strawberry.ID
    order_ref: str = strawberry.field(description="The receipt or order number; an order earns once.")
    amount: MoneyInput = strawberry.field(description="What the member paid that earns points.")
    items: list[EarnItemInput] | None = UNSET
    store_id: str | None = UNSET
    channel: str | None = UNSET
    occurred_at: datetime.datetime | None = strawberry.field(
        default=UNSET,
        description="When the purchase happened, for a till that was offline (30 days at most); default now.",
    )


@strawberry.type
class EarnBreakdown:
    rule: str
    kind: str
    points: Long


@strawberry.type
class PointsEarned:
    order_ref: str
    points_earned: Long
    breakdown: list[EarnBreakdown] = strawberry.field(directives=[assumed(10)])
    balance: Long
    available: Long
    tier: Tier | None
    tier_changed: bool

    @classmethod
    def of(cls, read: EarnRead) -> PointsEarned:
        return cls(
            order_ref=read.order_ref,
            points_earned=Long(read.points_earned),
            breakdown=[
                EarnBreakdown(rule=b.rule, kind=b.kind, points=Long(b.points)) for b in read.breakdown
            ],
            balance=Long(read.balance),
            available=Long(read.available),
            tier=None
            if read.tier is None
            else Tier(code=read.tier.code, name=read.tier.name, rank=read.tier.rank),
            tier_changed=read.tier_changed,
        )


@strawberry.type
class EarnPointsPayload:
    earned: PointsEarned | None
    user_errors: list[UserError] = strawberry.field(directives=[assumed(5)])
    replayed: bool = strawberry.field(
        description="Whether this is the first answer to the same `idempotencyKey`."
    )


async def _earn(uow: UnitOfWork, caller: Principal, request: _Earn) -> EarnRead:
    result = await service.earn(
        uow,
        member_id=request.member_id,
        order_ref=request.order_ref,
        amount=request.amount.money(),
        items=[item.item() for item in request.items],
        store_id=request.store_id,
        channel=request.channel,
        occurred_at=request.occurred_at,
        actor=caller.key_id,
    )
    return EarnRead.model_validate(result)


async def _earn_points(
    info: Info[GraphQLContext, None], input: EarnPointsInput, idempotency_key: str | None = None
) -> EarnPointsPayload:
    outcome = await run_mutation(
        info,
        name="loyaltyEarnPoints",
        scopes=TILLS,
        body=body_of(input),
        model=_Earn,
        reply=EarnRead,
        work=_earn,
        idempotency_key=idempotency_key,
    )
    return EarnPointsPayload(
        earned=None if outcome.result is None else PointsEarned.of(outcome.result),
        user_errors=outcome.user_errors,
        replayed=outcome.replayed,
    )


@strawberry.type
class MemberPointsFields:
    """Member's points fields (Member inherits them)."""


@strawberry.type
class PointsMutations:
    loyalty_earn_points: EarnPointsPayload = strawberry.mutation(
        resolver=_earn_points,
        description="Earn points for a purchase: POST /v1/members/{id}/earn, with its rules and answers.",
    )
