"""/v1/rewards: the catalogue bought with points (admin to change, tills and shops to read), and redeeming a
reward for a member."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import Paging, UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.transaction import UnitOfWorkRoute
from loyalty_api.members.errors import MemberNotActive, MemberNotFound
from loyalty_api.points.errors import InsufficientPoints
from loyalty_api.rewards import service
from loyalty_api.rewards.errors import (
    RewardLimitReached,
    RewardNotAvailable,
    RewardNotFound,
    RewardOutOfStock,
)
from loyalty_api.rewards.schemas import RedemptionRead, RewardPage, RewardRead, RewardWrite

router = APIRouter(prefix="/v1", tags=["rewards"], route_class=UnitOfWorkRoute)

Operator = Annotated[Principal, Depends(require(Scope.admin))]
Till = Annotated[Principal, Depends(require(Scope.admin, Scope.pos, Scope.ecommerce))]
_AUTH = (InvalidApiKey, ScopeNotAllowed)


@router.post(
    "/rewards", status_code=201, summary="Create a reward", responses=problem_responses(*_AUTH, InvalidField)
)
async def create_reward(body: RewardWrite, uow: UoW, _: Operator) -> RewardRead:
    """Add a reward to the catalogue: its price in points, stock (null: unlimited), a per-member limit, when
    it is offered, and the `coupon` each redemption issues (an offer with the same conditions as benefits,
    valid for `coupon_valid_days`).

    For `admin` keys only; honours `Idempotency-Key`. Emits `reward.changed`."""
    return RewardRead.of(await service.create_reward(uow, body.definition(), stock=body.stock))


@router.get(
    "/rewards",
    summary="List the rewards catalogue (keys other than admin see only rewards offered now)",
    responses=problem_responses(*_AUTH, InvalidField),
)
async def list_rewards(uow: UoW, caller: Till, paging: Paging) -> RewardPage:
    """The rewards catalogue, oldest first, page by page. An `admin` key sees every reward; `pos` and
    `ecommerce` keys see only those offered now (active, inside their validity window). `available` says
    whether one can be redeemed now, stock included.

    Reads only."""
    page = await service.list_rewards(
        uow, only_offered=not service.sees_whole_catalogue(caller), limit=paging.limit, cursor=paging.cursor
    )
    return RewardPage(items=[RewardRead.of(r) for r in page.items], next_cursor=page.next_cursor)


@router.get(
    "/rewards/{reward_id}", summary="Read a reward", responses=problem_responses(*_AUTH, RewardNotFound)
)
async def read_reward(reward_id: uuid.UUID, uow: UoW, caller: Till) -> RewardRead:
    """One reward. A `pos` or `ecommerce` key gets 404 `reward_not_found` for a reward that is not offered
    now; an `admin` key sees every reward.

    Reads only."""
    return RewardRead.of(
        await service.get_reward(uow, reward_id, only_offered=not service.sees_whole_catalogue(caller))
    )


@router.put(
    "/rewards/{reward_id}",
    summary="Replace a reward (there is no delete: set `active` to false)",
    responses=problem_responses(*_AUTH, RewardNotFound, InvalidField),
)
async def replace_reward(reward_id: uuid.UUID, body: RewardWrite, uow: UoW, _: Operator) -> RewardRead:
    """Replace a reward's terms; there is no delete: set `active` to false. Leaving `stock` out keeps the
    stock left as it is; giving it (or null) sets it. Coupons issued already keep their terms.

    For `admin` keys only. PUT does not take `Idempotency-Key`: it replaces, so a repeat sets the same values.
    Emits `reward.changed`, unless the reward is as sent already (a repeat changes nothing)."""
    stock = body.stock if "stock" in body.model_fields_set else service.KEEP_STOCK
    return RewardRead.of(await service.replace_reward(uow, reward_id, body.definition(), stock=stock))


@router.post(
    "/members/{member_id}/rewards/{reward_id}/redeem",
    status_code=201,
    summary="Buy a reward with the member's points; the member gets its coupon",
    responses=problem_responses(
        *_AUTH,
        MemberNotFound,
        MemberNotActive,
        RewardNotFound,
        InsufficientPoints,
        RewardLimitReached,
        RewardOutOfStock,
        RewardNotAvailable,
    ),
)
async def redeem_reward(member_id: uuid.UUID, reward_id: uuid.UUID, uow: UoW, caller: Till) -> RedemptionRead:
    """Buy a reward with the member's points in one transaction: spend `cost_points` (a ledger entry of type
    `reward`, oldest points first), take one from stock and issue the reward's coupon, answered with its code.
    No body.

    For `pos`, `ecommerce` and `admin` keys; honours `Idempotency-Key` (send one: a retry without it buys
    twice). A refusal leaves nothing behind: 422 `insufficient_points`, 409 `reward_limit_reached`, 409
    `reward_out_of_stock`, 409 `reward_not_available`. Emits `reward.redeemed` and `coupon.issued`."""
    result = await service.redeem_reward(uow, member_id=member_id, reward_id=reward_id, actor=caller.key_id)
    return RedemptionRead.of(result)
