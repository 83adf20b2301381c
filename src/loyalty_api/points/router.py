"""Points at the till and the checkout: earn, redeem, holds, refunds, balance, ledger, adjustments."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import EmptyIsLeftOut, Paging, UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.schemas import OrderRef, QueryInstant
from loyalty_api.http.transaction import UnitOfWorkRoute
from loyalty_api.members.errors import MemberNotActive, MemberNotFound
from loyalty_api.points import errors, holds, refunds, service, transfers
from loyalty_api.points.ledger import EntryType
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
    TransferRead,
    TransferRequest,
    TransferReversalRead,
    TransferReversalRequest,
)

router = APIRouter(prefix="/v1", tags=["points"], route_class=UnitOfWorkRoute)

Till = Annotated[Principal, Depends(require(Scope.admin, Scope.pos, Scope.ecommerce))]
Operator = Annotated[Principal, Depends(require(Scope.admin))]
MembersApp = Annotated[Principal, Depends(require(Scope.admin, Scope.ecommerce))]
_AUTH = (InvalidApiKey, ScopeNotAllowed)


@router.post(
    "/members/{member_id}/earn",
    summary="Earn points for a purchase",
    responses=problem_responses(
        *_AUTH,
        MemberNotFound,
        MemberNotActive,
        errors.OrderAlreadyEarned,
        errors.OrderBelongsToAnotherMember,
        errors.OrderRefunded,
        errors.CurrencyMismatch,
        InvalidField,
    ),
)
async def earn(member_id: uuid.UUID, body: EarnRequest, uow: UoW, caller: Till) -> EarnRead:
    """Give the member points for a purchase: the base rate on `amount`, then the tier's multiplier and any
    points-multiplier benefits, then the earning rules from the highest priority down, one `breakdown` line
    each.

    For `pos`, `ecommerce` and `admin` keys; honours `Idempotency-Key`. An order earns once: the same
    `order_ref` again is 409 `order_already_earned`, with or without a key, also once its `occurred_at` has
    passed the 30 days a receipt recorded offline may take, or a rate raised since would have it earn more
    than one purchase may (a new one that old, or that large, is 422 `validation_error`); an
    order refunded already takes no new points (409 `order_refunded`). A purchase that qualifies for a
    higher tier moves the member up at once (`tier_changed`; it still earns at the old tier's multiplier),
    except while an operator's override holds their tier.
    Emits `points.earned`, and `tier.upgraded` when the member moves up."""
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
        MemberNotActive,
        errors.InsufficientPoints,
        errors.BelowMinimumRedeem,
        errors.RedeemShareExceeded,
        errors.OrderAlreadyRedeemed,
        errors.HoldExists,
        errors.OrderBelongsToAnotherMember,
        errors.OrderRefunded,
        errors.CurrencyMismatch,
    ),
)
async def redeem(member_id: uuid.UUID, body: RedeemRequest, uow: UoW, caller: Till) -> RedeemRead:
    """Pay with points: take `points` from the member's available points, oldest first, and answer what they
    are worth (`value`, in the programme's currency).

    For `pos`, `ecommerce` and `admin` keys; honours `Idempotency-Key`. Too few available points is 422
    `insufficient_points`, with nothing written; an order redeems once (409 `order_already_redeemed`, also
    for a redeem sent again without a key whose first spent the points it asks for, or made before the
    programme's minimum or maximum share changed), and not while a checkout holds points for it (409
    `hold_exists`: capture or release the hold its `hold_id` names), nor once it was refunded (409
    `order_refunded`). With `order_total`, the programme's maximum share is checked (422
    `redeem_share_exceeded`) and later refunds by amount are measured against it. Emits `points.redeemed`."""
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
        MemberNotActive,
        errors.BelowMinimumRedeem,
        errors.InsufficientPoints,
        errors.HoldExists,
        errors.OrderAlreadyRedeemed,
        errors.OrderBelongsToAnotherMember,
        errors.OrderRefunded,
    ),
)
async def create_hold(member_id: uuid.UUID, body: HoldRequest, uow: UoW, caller: Till) -> HoldRead:
    """Reserve points for an order being placed, so they cannot be spent twice: capture them when the order
    ships, release them if it is cancelled. A hold nobody captures expires after `ttl_seconds` (default 900).

    For `pos`, `ecommerce` and `admin` keys; honours `Idempotency-Key`. Answers 201 with the hold and the
    member's points after it. Too few available points is 422 `insufficient_points`; an order has one active
    hold (409 `hold_exists`, with the `hold_id` to capture or release; also for a hold sent again without a
    key whose first holds the points it asks for, or made before the programme's minimum rose), and none
    once it was paid with points (409 `order_already_redeemed`) or refunded (409 `order_refunded`); fewer
    points than the programme's minimum redemption is 422 `below_minimum_redeem`. Emits `points.held`."""
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
    """A hold as it stands (`active`, `captured`, `released` or `expired`) and how many of its points were
    captured. `balance` and `available` are null here: the calls that change a hold answer them.

    For `pos`, `ecommerce` and `admin` keys. Reads only."""
    return HoldRead.model_validate(await holds.get_hold(uow, hold_id))


@router.post(
    "/holds/{hold_id}/capture",
    summary="Spend held points (the order shipped)",
    responses=problem_responses(
        *_AUTH,
        errors.HoldNotFound,
        errors.HoldNotActive,
        MemberNotActive,
        errors.OrderRefunded,
        errors.CaptureExceedsHold,
        errors.BelowMinimumRedeem,
        errors.CurrencyMismatch,
        errors.RedeemShareExceeded,
    ),
)
async def capture_hold(
    hold_id: uuid.UUID, uow: UoW, caller: Till, body: CaptureRequest | None = None
) -> HoldRead:
    """Spend the held points on the order, when it ships. `points` captures fewer than were held (the rest is
    freed; more is 422 `capture_exceeds_hold`, and fewer than the programme's minimum redemption 422
    `below_minimum_redeem`); `order_total` gives the order's total, which refunds by amount
    need. Leave the body out, or send `{}` (the same request to an `Idempotency-Key`), to capture everything.

    For `pos`, `ecommerce` and `admin` keys; honours `Idempotency-Key`. A hold captured, released or expired
    already is 409 `hold_not_active`; a capture pays with points as a redeem does, so a member no longer
    active (suspended) cannot: 409 `member_not_active` (a release still frees the points); nor can a hold on
    an order refunded while it lasted: 409 `order_refunded` (release it). Emits `points.hold_captured`."""
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
    """Free the held points because the order was cancelled: they are available again. No body.

    For `pos`, `ecommerce` and `admin` keys; honours `Idempotency-Key`. A hold captured, released or expired
    already is 409 `hold_not_active`. Emits `points.hold_released`."""
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
    """Refund an order in full or in part: take back the points it earned and give back the points it redeemed
    or captured, in proportion. Send exactly one of `amount` (part of the order's total), `points` (redeemed
    points to give back) or `full: true`.

    For `pos`, `ecommerce` and `admin` keys; honours `Idempotency-Key`. `amount` needs the order's total (from
    an earn, or `order_total` on the redeem or capture), else 422 `order_total_unknown`; more than is left is
    422 `refund_exceeds_order`. Points already spent are not taken below zero but reported as `shortfall`.
    Redeemed points come back with the time they had left when spent (a part refund: the last spent first);
    points a capture spent already past their end come back ended. Points an order earned that come back pay
    what it owes first: its shortfall, then the points its refund took in their place, which go back with
    their own ends; only the rest expire (`points.expired`). A refunded order is closed to new points: an
    earn, redeem, hold or capture on it after is refused (`order_refunded`). Emits `points.refunded`."""
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
    """The member's points now: `balance`, `held` by active holds, `available` (balance less held) and what
    that is worth, the points earned in all, and what expires in which month (in the programme's time zone).

    For `pos`, `ecommerce` and `admin` keys. Reads only."""
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
    type: Annotated[
        list[EntryType] | None, Query(description="Only these entry types"), EmptyIsLeftOut
    ] = None,
    since: Annotated[
        QueryInstant | None,
        Query(description="Entries at or after this instant (with a zone)"),
        EmptyIsLeftOut,
    ] = None,
    until: Annotated[
        QueryInstant | None, Query(description="Entries before this instant (with a zone)"), EmptyIsLeftOut
    ] = None,
) -> LedgerPage:
    """Every change to the member's points, newest first, page by page: the signed `amount`, the balance and
    held points after it, the order or hold, `details` (an earn's rule breakdown, a refund's shares, an
    adjustment's reason) and the API key that made it. Filter by `type` (repeatable), `since` and `until`.

    For `pos`, `ecommerce` and `admin` keys. Reads only."""
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
    """Add points by hand, or take them away with a negative `points`, giving the `reason`: the ledger keeps
    it with the key that made the change. Added points expire like earned ones and do not count towards tiers.

    For `admin` keys only; honours `Idempotency-Key` (send one: a retry without it adjusts again). Taking away
    more than the member has available is 422 `insufficient_points`. Emits `points.adjusted`."""
    result = await service.adjust(
        uow, member_id=member_id, points=body.points, reason=body.reason, actor=caller.key_id
    )
    return AdjustmentRead.model_validate(result)


@router.post(
    "/members/{member_id}/transfers",
    status_code=201,
    summary="Send points to another member",
    responses=problem_responses(
        *_AUTH,
        MemberNotFound,
        MemberNotActive,
        errors.TransfersNotOffered,
        errors.TransferLimitExceeded,
        errors.PointsInReturnWindow,
        errors.InsufficientPoints,
        InvalidField,
    ),
)
async def transfer(member_id: uuid.UUID, body: TransferRequest, uow: UoW, caller: MembersApp) -> TransferRead:
    """Send `points` of the member's available points to another member (`to_member_id`): a family pooling
    its points, a gift to a friend. The points are spent oldest expiry first and keep their ends with the
    recipient, so a transfer never makes points last longer. They count neither as earned (not in the
    recipient's `lifetime_earned`, not towards a tier) nor as redeemed.

    For `ecommerce` (the member's app or web shop) and `admin` keys; honours `Idempotency-Key` (send one: a
    retry without it sends the points again). Only when the programme has `transfers_enabled` (else 409
    `transfers_not_offered`); both members must be active (409 `member_not_active`); a recipient that does
    not exist, or the sender themselves, is 422 `validation_error` naming `to_member_id`; more than the
    sender has available is 422 `insufficient_points`; past the programme's `transfer_daily_limit` for the
    sender today is 422 `transfer_limit_exceeded`; points that purchases within the programme's
    `return_window_days` earned (or their referral points) are 422 `points_in_return_window` until the window
    has passed, so a return can still take them back. The ledgers show a `transfer_out` and a `transfer_in`
    entry naming the same `transfer_id`. Emits `points.transferred` for each member."""
    result = await transfers.transfer(
        uow, from_member_id=member_id, to_member_id=body.to_member_id, points=body.points, actor=caller.key_id
    )
    return TransferRead.model_validate(result)


@router.post(
    "/members/{member_id}/transfers/{transfer_id}/reversal",
    status_code=201,
    summary="Reverse a points transfer the member sent",
    responses=problem_responses(
        *_AUTH,
        MemberNotFound,
        errors.TransferNotFound,
        errors.TransferAlreadyReversed,
        errors.TransferExpired,
        errors.InsufficientPoints,
    ),
)
async def reverse_transfer(
    member_id: uuid.UUID,
    transfer_id: uuid.UUID,
    body: TransferReversalRequest,
    uow: UoW,
    caller: Operator,
) -> TransferReversalRead:
    """Undo a transfer the member (the path's, the sender) made: points sent to the wrong member, or in a
    fraud. The transfer's points that have not passed their end go back, all or none (fewer available with
    the recipient is 422 `insufficient_points`: points on hold or spent cannot be taken back; an adjustment
    on each side moves what is left), whatever either member's status now. The recipient gives back the
    transfer's own points first, and the sender gets them with the ends they had, settling what the sender
    owes first, as points a refund gives back do; points that ended at the recipient are not owed (409
    `transfer_expired` when all have). Once only (409 `transfer_already_reversed`); a transfer the member
    did not send, or one whose recipient was erased, is 404 `transfer_not_found`.

    For `admin` keys only; honours `Idempotency-Key`. The recipient's ledger shows a `transfer_out` with
    `reversal: true`, the sender's a `transfer_return`, both with the `reason` and the transfer's
    `transfer_id`; neither counts towards a daily transfer limit, nor does the reversed transfer. Emits
    `points.transfer_reversed` for each member."""
    result = await transfers.reverse_transfer(
        uow, member_id=member_id, transfer_id=transfer_id, reason=body.reason, actor=caller.key_id
    )
    return TransferReversalRead.model_validate(result)
