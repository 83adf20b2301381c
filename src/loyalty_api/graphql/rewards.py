"""Rewards in GraphQL: the catalogue as GET /v1/rewards lists it, and `loyaltyRedeemReward` (POST
/v1/members/{id}/rewards/{reward_id}/redeem), through the same services and rules."""

from __future__ import annotations

import datetime
import uuid

import strawberry
from pydantic import BaseModel, ConfigDict
from strawberry.types import Info

from loyalty_api.auth.principal import Principal
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.graphql.benefits import CouponOffer, coupon_offer
from loyalty_api.graphql.connections import Connection, cursor_of, page_size, paged
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.cost import sliced
from loyalty_api.graphql.coupons import Coupon
from loyalty_api.graphql.errors import require
from loyalty_api.graphql.ids import parse_id
from loyalty_api.graphql.money import Long
from loyalty_api.graphql.mutation import MutationPayload, mutation
from loyalty_api.graphql.scopes import READERS, TILLS
from loyalty_api.rewards import service
from loyalty_api.rewards.errors import RewardNotFound
from loyalty_api.rewards.schemas import RedemptionRead, RewardRead
from loyalty_api.rewards.service import RewardView


@strawberry.type(description="A catalogue item bought with points; redeeming it gives a coupon.")
class Reward:
    id: strawberry.ID
    name: str
    description: str | None
    cost_points: Long
    stock_left: int | None = strawberry.field(description="null: unlimited")
    per_member_limit: int | None = strawberry.field(description="null: no limit")
    coupon: CouponOffer = strawberry.field(description="The offer of the coupon a redemption issues.")
    coupon_valid_days: int
    currency: str = strawberry.field(description="The programme's currency, which the offer's money is in.")
    active: bool
    valid_from: datetime.datetime | None
    valid_until: datetime.datetime | None
    available: bool = strawberry.field(description="Offered now (active, inside its window) and in stock.")
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @classmethod
    def of(cls, view: RewardView) -> Reward:
        read = RewardRead.of(view)
        return cls(
            id=strawberry.ID(str(read.id)),
            name=read.name,
            description=read.description,
            cost_points=Long(read.cost_points),
            stock_left=read.stock_left,
            per_member_limit=read.per_member_limit,
            coupon=coupon_offer(read.coupon, read.currency),
            coupon_valid_days=read.coupon_valid_days,
            currency=read.currency,
            active=read.active,
            valid_from=read.valid_from,
            valid_until=read.valid_until,
            available=read.available,
            created_at=read.created_at,
            updated_at=read.updated_at,
        )


async def _rewards(
    info: Info[GraphQLContext, None], first: int = 20, after: str | None = None
) -> Connection[Reward]:
    caller = require(info.context, *READERS)
    limit = page_size(first)
    async with info.context.snapshot.read() as uow:
        with paged():
            page = await service.list_rewards(
                uow,
                only_offered=not service.sees_whole_catalogue(caller),
                limit=limit,
                cursor=cursor_of(after),
            )
    return Connection.of(
        page.items, page.next_cursor, node=Reward.of, cursor=lambda r: page.cursor_after(r.id)
    )


async def _reward(info: Info[GraphQLContext, None], id: strawberry.ID) -> Reward | None:
    caller = require(info.context, *READERS)
    reward_id = parse_id(str(id), "id")
    async with info.context.snapshot.read() as uow:
        try:
            found = await service.get_reward(
                uow, reward_id, only_offered=not service.sees_whole_catalogue(caller)
            )
        except RewardNotFound:
            return None
    return Reward.of(found)


@strawberry.type
class RewardQueries:
    loyalty_reward: Reward | None = strawberry.field(
        resolver=_reward,
        description="A reward by id, as GET /v1/rewards/{id} reads it: null when there is none, or when it "
        "is not offered now and the key is not an admin's.",
    )
    loyalty_rewards: Connection[Reward] = strawberry.field(
        resolver=_rewards,
        description="The rewards catalogue, oldest first, as GET /v1/rewards lists it: an admin key sees "
        "every reward, other keys only those offered now. The cursors are REST's.",
        directives=[sliced(sized_fields=["edges"])],
    )


class _Redeem(BaseModel):
    """REST's redeem has no body: its path's ids are the whole input."""

    model_config = ConfigDict(extra="forbid")

    member_id: uuid.UUID
    reward_id: uuid.UUID


@strawberry.input(description="POST /v1/members/{id}/rewards/{reward_id}/redeem: the path's ids.")
class RedeemRewardInput:
    member_id: strawberry.ID
    reward_id: strawberry.ID


@strawberry.type
class Redemption:
    id: strawberry.ID
    reward_id: strawberry.ID
    member_id: strawberry.ID
    points_spent: Long
    balance: Long = strawberry.field(description="The member's points balance after the redemption.")
    available: Long
    coupon: Coupon = strawberry.field(description="The coupon the redemption issued.")
    created_at: datetime.datetime

    @classmethod
    def of(cls, read: RedemptionRead) -> Redemption:
        return cls(
            id=strawberry.ID(str(read.id)),
            reward_id=strawberry.ID(str(read.reward_id)),
            member_id=strawberry.ID(str(read.member_id)),
            points_spent=Long(read.points_spent),
            balance=Long(read.balance),
            available=Long(read.available),
            coupon=Coupon.of(read.coupon),
            created_at=read.created_at,
        )


@strawberry.type
class RedeemRewardPayload(MutationPayload):
    redemption: Redemption | None


async def _redeem(uow: UnitOfWork, caller: Principal, request: _Redeem) -> RedemptionRead:
    result = await service.redeem_reward(
        uow, member_id=request.member_id, reward_id=request.reward_id, actor=caller.key_id
    )
    return RedemptionRead.of(result)


@strawberry.type
class RewardMutations:
    loyalty_redeem_reward: RedeemRewardPayload | None = mutation(
        input=RedeemRewardInput,
        payload=RedeemRewardPayload,
        scopes=TILLS,
        model=_Redeem,
        reply=RedemptionRead,
        work=_redeem,
        answer={"redemption": Redemption.of},
        description="Buy a reward with the member's points; the member gets its coupon: POST "
        "/v1/members/{id}/rewards/{reward_id}/redeem, with its rules and answers. Send an `idempotencyKey`: "
        "a retry without one buys twice.",
    )
