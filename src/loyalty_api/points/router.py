"""Points at the till and the checkout: earn, redeem, holds, refunds, balance, ledger, adjustments."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import Paging, UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.schemas import Instant, OrderRef
from loyalty_api.http.transaction import UnitOfWorkRoute
from loyalty_api.members.errors import MemberNotFound
from loyalty_api.points import errors, holds, refunds, service
from loyalty_api.points.schemas import (
    AdjustmentRead,
    AdjustmentRequest,
    CaptureRequest,
    EarnRead,
    EarnRequest,
    HoldRead,
    HoldRequest,
    LedgerEntryRead,
    LedgerPage,
    PointsRead,
    RedeemRead,
    RedeemRequest,
    RefundRead,
    RefundRequest,
)

router = APIRouter(prefix="/v1", tags=["points"], route_class=UnitOfWorkRoute)

Till = Annotated[Principal, Depends(require(Scope.admin, Scope.pos, Scope.ecommerce))]
Operator = Annotated[Principal, Depends(require(Scope.admin))]
_AUTH = (InvalidApiKey, ScopeNotAllowed)
EntryType = Literal["earn", "redeem", "hold", "capture", "release", "refund", "expire", "adjust", "reward"]


@router.post(
    "/members/{member_id}/earn",
    summary="Earn points for a purchase",
    responses=problem_responses(
        *_AUTH,
        MemberNotFound,
        errors.MemberNotActive,
        errors.OrderAlreadyEarned,
        errors.OrderBelongsToAnotherMember,
        errors.CurrencyMismatch,
        InvalidField,
    ),
)
async def earn(member_id: uuid.UUID, body: EarnRequest, uow: UoW, caller: Till) -> EarnRead:
    result = await service.earn(
        uow,
        member_id=member_id,
        order_ref=body.order_ref,
        amount=body.amount.money(),
        items=[item.item() for item in body.items],
        store_id=body.store_id,
        channel=body.channel,
        occurred_at=body.occurred_at,
        actor=caller.key_id,
    )
    return EarnRead.model_validate(result)


@router.post(
    "/members/{member_id}/redeem",
    summary="Pay with points",
    responses=problem_responses(
        *_AUTH,
        MemberNotFound,
        errors.MemberNotActive,
        errors.InsufficientPoints,
        errors.BelowMinimumRedeem,
        errors.RedeemShareExceeded,
        errors.OrderAlreadyRedeemed,
        errors.OrderBelongsToAnotherMember,
        errors.CurrencyMismatch,
    ),
)
async def redeem(member_id: uuid.UUID, body: RedeemRequest, uow: UoW, caller: Till) -> RedeemRead:
    result = await service.redeem(
        uow,
        member_id=member_id,
        points=body.points,
        order_ref=body.order_ref,
        order_total=None if body.order_total is None else body.order_total.money(),
        actor=caller.key_id,
    )
    return RedeemRead.model_validate(result)


@router.post(
    "/members/{member_id}/holds",
    status_code=201,
    summary="Hold points for a checkout",
    responses=problem_responses(
        *_AUTH,
        MemberNotFound,
        errors.MemberNotActive,
        errors.InsufficientPoints,
        errors.HoldExists,
        errors.OrderBelongsToAnotherMember,
    ),
)
async def create_hold(member_id: uuid.UUID, body: HoldRequest, uow: UoW, caller: Till) -> HoldRead:
    hold = await holds.create_hold(
        uow,
        member_id=member_id,
        points=body.points,
        order_ref=body.order_ref,
        ttl_seconds=body.ttl_seconds,
        actor=caller.key_id,
    )
    return HoldRead.model_validate(hold)


@router.get(
    "/holds/{hold_id}", summary="Read a hold", responses=problem_responses(*_AUTH, errors.HoldNotFound)
)
async def read_hold(hold_id: uuid.UUID, uow: UoW, _: Till) -> HoldRead:
    return HoldRead.model_validate(await holds.get_hold(uow, hold_id))


@router.post(
    "/holds/{hold_id}/capture",
    summary="Spend held points (the order shipped)",
    responses=problem_responses(
        *_AUTH, errors.HoldNotFound, errors.HoldNotActive, errors.CaptureExceedsHold, errors.CurrencyMismatch
    ),
)
async def capture_hold(
    hold_id: uuid.UUID, uow: UoW, caller: Till, body: CaptureRequest | None = None
) -> HoldRead:
    body = body or CaptureRequest()
    hold = await holds.capture_hold(
        uow,
        hold_id,
        points=body.points,
        order_total=None if body.order_total is None else body.order_total.money(),
        actor=caller.key_id,
    )
    return HoldRead.model_validate(hold)


@router.post(
    "/holds/{hold_id}/release",
    summary="Free held points (the order was cancelled)",
    responses=problem_responses(*_AUTH, errors.HoldNotFound, errors.HoldNotActive),
)
async def release_hold(hold_id: uuid.UUID, uow: UoW, caller: Till) -> HoldRead:
    return HoldRead.model_validate(await holds.release_hold(uow, hold_id, actor=caller.key_id))


@router.post(
    "/orders/{order_ref}/refund",
    summary="Refund an order in full or in part: by amount, by points, or in full",
    responses=problem_responses(
        *_AUTH,
        errors.OrderNotFound,
        errors.RefundExceedsOrder,
        errors.OrderTotalUnknown,
        errors.CurrencyMismatch,
    ),
)
async def refund_order(
    order_ref: Annotated[OrderRef, Path()], body: RefundRequest, uow: UoW, caller: Till
) -> RefundRead:
    result = await refunds.refund(
        uow,
        order_ref=order_ref,
        amount=None if body.amount is None else body.amount.money(),
        points=body.points,
        full=body.full is True,
        actor=caller.key_id,
    )
    return RefundRead.model_validate(result)


@router.get(
    "/members/{member_id}/points",
    summary="A member's balance, held and available points, and what expires when",
    responses=problem_responses(*_AUTH, MemberNotFound),
)
async def read_points(member_id: uuid.UUID, uow: UoW, _: Till) -> PointsRead:
    return PointsRead.model_validate(await service.summary(uow, member_id))


@router.get(
    "/members/{member_id}/ledger",
    summary="A member's ledger, newest first",
    responses=problem_responses(*_AUTH, MemberNotFound),
)
async def read_ledger(
    member_id: uuid.UUID,
    uow: UoW,
    _: Till,
    paging: Paging,
    type: Annotated[list[EntryType] | None, Query(description="Only these entry types")] = None,
    since: Annotated[
        Instant | None, Query(description="Entries at or after this instant (with a zone)")
    ] = None,
    until: Annotated[Instant | None, Query(description="Entries before this instant (with a zone)")] = None,
) -> LedgerPage:
    page = await service.ledger(
        uow, member_id, types=type or (), since=since, until=until, limit=paging.limit, cursor=paging.cursor
    )
    return LedgerPage(
        items=[LedgerEntryRead.model_validate(e) for e in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/members/{member_id}/adjustments",
    status_code=201,
    summary="Add or remove points by hand, with a reason",
    responses=problem_responses(*_AUTH, MemberNotFound, errors.InsufficientPoints, InvalidField),
)
async def adjust(member_id: uuid.UUID, body: AdjustmentRequest, uow: UoW, caller: Operator) -> AdjustmentRead:
    result = await service.adjust(
        uow, member_id=member_id, points=body.points, reason=body.reason, actor=caller.key_id
    )
    return AdjustmentRead.model_validate(result)
