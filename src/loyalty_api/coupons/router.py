"""A member's coupons, and using a coupon on an order."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.coupons import service
from loyalty_api.coupons.codes import normalize_code
from loyalty_api.coupons.errors import (
    CouponAlreadyUsed,
    CouponExpired,
    CouponNotFound,
    CouponNotYetValid,
    CouponUsedOnThisOrder,
)
from loyalty_api.coupons.schemas import CouponPage, CouponRead, CouponUse
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import EmptyIsLeftOut, Paging, UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.schemas import Spelling
from loyalty_api.http.transaction import UnitOfWorkRoute
from loyalty_api.members.errors import MemberNotActive, MemberNotFound

router = APIRouter(prefix="/v1", tags=["coupons"], route_class=UnitOfWorkRoute)

Till = Annotated[Principal, Depends(require(Scope.admin, Scope.pos, Scope.ecommerce))]
_AUTH = (InvalidApiKey, ScopeNotAllowed)


@router.get(
    "/members/{member_id}/coupons",
    summary="A member's coupons, newest first",
    responses=problem_responses(*_AUTH, MemberNotFound, InvalidField),
)
async def list_coupons(
    member_id: uuid.UUID,
    uow: UoW,
    _: Till,
    paging: Paging,
    status: Annotated[
        Literal["active", "used", "expired"] | None,
        Query(description="Only coupons with this status (`active` includes ones not valid yet)"),
        EmptyIsLeftOut,
    ] = None,
) -> CouponPage:
    """A member's coupons, newest first, page by page: bought with points, birthday gifts, and those paid
    plans give. `status` filters: `active` (neither used nor expired, possibly not valid yet), `used` or
    `expired`.

    For `pos`, `ecommerce` and `admin` keys. Reads only."""
    page = await service.list_coupons(uow, member_id, status=status, limit=paging.limit, cursor=paging.cursor)
    return CouponPage(items=[CouponRead.of(c) for c in page.items], next_cursor=page.next_cursor)


@router.post(
    "/coupons/{code}/use",
    summary="Use a coupon on an order (once)",
    responses=problem_responses(
        *_AUTH,
        CouponNotFound,
        CouponAlreadyUsed,
        CouponUsedOnThisOrder,
        CouponExpired,
        CouponNotYetValid,
        MemberNotActive,
        InvalidField,
    ),
)
async def use_coupon(
    code: Annotated[
        str,
        Path(min_length=1, max_length=64, description="The coupon's code"),
        Spelling(normalize_code),
    ],
    body: CouponUse,
    uow: UoW,
    caller: Till,
) -> CouponRead:
    """Use a coupon on an order, once. A `pos` or `admin` key may name the coupon by its code alone; an
    `ecommerce` key must also give the `member_id`, and gets 404 `coupon_not_found` for another member's
    coupon.

    For `pos`, `ecommerce` and `admin` keys; honours `Idempotency-Key`. Used already: 409
    `coupon_already_used`, or `coupon_used_on_this_order` when it was used on this `order_ref` (a retry whose
    answer was lost: the coupon applies to the order); expired: 410 `coupon_expired`; not valid yet: 422
    `coupon_not_yet_valid`; the member suspended or closed: 409 `member_not_active`. Emits `coupon.used`."""
    service.check_member_named(body.member_id, caller)
    used = await service.use_coupon(uow, code=code, order_ref=body.order_ref, member_id=body.member_id)
    return CouponRead.of(used)
