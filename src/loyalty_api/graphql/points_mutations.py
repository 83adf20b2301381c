"""Points over GraphQL, changes: earn, redeem, holds, refunds and adjustments through the same services,
rules and scopes as the points endpoints of REST."""

from __future__ import annotations

import datetime
import uuid
from typing import get_args

import strawberry
from pydantic import BaseModel, ConfigDict
from strawberry.types.unset import UNSET

from loyalty_api.auth.principal import Principal
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.graphql.cost import assumed
from loyalty_api.graphql.enums import values_enum
from loyalty_api.graphql.money import Long, Money, MoneyInput
from loyalty_api.graphql.mutation import MutationPayload, mutation
from loyalty_api.graphql.points import PointsHold
from loyalty_api.graphql.scopes import OPERATORS, SELLERS, TILLS
from loyalty_api.graphql.tiers import Tier
from loyalty_api.http.schemas import OrderRef
from loyalty_api.points import holds, refunds, service, transfers
from loyalty_api.points.ledger import RefundKind
from loyalty_api.points.schemas import (
    AdjustmentRead,
    AdjustmentRequest,
    CaptureRequest,
    EarnRead,
    EarnRequest,
    HoldRead,
    HoldRequest,
    RedeemRead,
    RedeemRequest,
    RefundRead,
    RefundRequest,
    TransferRead,
    TransferRequest,
    TransferReversalRead,
    TransferReversalRequest,
)


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
            tier=Tier.of_read(read.tier),
            tier_changed=read.tier_changed,
        )


@strawberry.type
class EarnPointsPayload(MutationPayload):
    earned: PointsEarned | None


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


# --- Redeem: POST /v1/members/{id}/redeem


class _Redeem(RedeemRequest):
    member_id: uuid.UUID


@strawberry.input(description="Points paid with, as the body of POST /v1/members/{id}/redeem.")
class RedeemPointsInput:
    member_id: strawberry.ID
    points: Long
    order_ref: str = strawberry.field(description="The order paid for; an order redeems once.")
    order_total: MoneyInput | None = strawberry.field(
        default=UNSET, description=RedeemRequest.model_fields["order_total"].description
    )


@strawberry.type
class PointsRedeemed:
    order_ref: str
    points_redeemed: Long
    value: Money = strawberry.field(description="What the points paid, in the programme's currency.")
    balance: Long
    available: Long

    @classmethod
    def of(cls, read: RedeemRead) -> PointsRedeemed:
        return cls(
            order_ref=read.order_ref,
            points_redeemed=Long(read.points_redeemed),
            value=Money.of_read(read.value),
            balance=Long(read.balance),
            available=Long(read.available),
        )


@strawberry.type
class RedeemPointsPayload(MutationPayload):
    redeemed: PointsRedeemed | None


async def _redeem(uow: UnitOfWork, caller: Principal, request: _Redeem) -> RedeemRead:
    result = await service.redeem(
        uow,
        member_id=request.member_id,
        points=request.points,
        order_ref=request.order_ref,
        order_total=None if request.order_total is None else request.order_total.money(),
        actor=caller.key_id,
    )
    return RedeemRead.model_validate(result)


@strawberry.type
class HoldPayloadFields(MutationPayload):
    """What every hold mutation answers: the hold after it."""

    hold: PointsHold | None


@strawberry.type
class HoldPointsPayload(HoldPayloadFields):
    pass


@strawberry.type
class CapturePointsPayload(HoldPayloadFields):
    pass


@strawberry.type
class ReleasePointsPayload(HoldPayloadFields):
    pass


class _Hold(HoldRequest):
    member_id: uuid.UUID


@strawberry.input(description="Points to reserve, as the body of POST /v1/members/{id}/holds.")
class HoldPointsInput:
    member_id: strawberry.ID
    points: Long
    order_ref: str = strawberry.field(description="The order being placed; it has one active hold.")
    ttl_seconds: int | None = strawberry.field(
        default=UNSET, description="How long the hold lasts if nobody captures it; default 900."
    )


async def _hold(uow: UnitOfWork, caller: Principal, request: _Hold) -> HoldRead:
    hold = await holds.create_hold(
        uow,
        member_id=request.member_id,
        points=request.points,
        order_ref=request.order_ref,
        ttl_seconds=request.ttl_seconds,
        actor=caller.key_id,
    )
    return HoldRead.model_validate(hold)


class _Capture(CaptureRequest):
    hold_id: uuid.UUID


@strawberry.input(description="A hold to spend, and the body of POST /v1/holds/{id}/capture.")
class CapturePointsInput:
    hold_id: strawberry.ID
    points: Long | None = strawberry.field(
        default=UNSET, description="Capture fewer than held; the rest is released. Default: all."
    )
    order_total: MoneyInput | None = strawberry.field(
        default=UNSET,
        description=CaptureRequest.model_fields["order_total"].description,
    )


async def _capture(uow: UnitOfWork, caller: Principal, request: _Capture) -> HoldRead:
    hold = await holds.capture_hold(
        uow,
        request.hold_id,
        points=request.points,
        order_total=None if request.order_total is None else request.order_total.money(),
        actor=caller.key_id,
    )
    return HoldRead.model_validate(hold)


class _Release(BaseModel):
    """POST /v1/holds/{id}/release has no body: the path's id is all."""

    model_config = ConfigDict(extra="forbid")

    hold_id: uuid.UUID


@strawberry.input(description="A hold to free, as POST /v1/holds/{id}/release.")
class ReleasePointsInput:
    hold_id: strawberry.ID


async def _release(uow: UnitOfWork, caller: Principal, request: _Release) -> HoldRead:
    return HoldRead.model_validate(await holds.release_hold(uow, request.hold_id, actor=caller.key_id))


# --- Refund: POST /v1/orders/{order_ref}/refund


class _Refund(RefundRequest):
    order_ref: OrderRef


RefundKindEnum = values_enum("RefundKind", get_args(RefundKind), "How a refund was measured.")


@strawberry.input(
    description="An order to refund and exactly one of `amount`, `points` or `full`, as the body of "
    "POST /v1/orders/{orderRef}/refund."
)
class RefundPointsInput:
    order_ref: str
    amount: MoneyInput | None = strawberry.field(
        default=UNSET,
        description="How much of the order's total is refunded: earned points are taken back and redeemed "
        "points given back in proportion. Needs the order's total.",
    )
    points: Long | None = strawberry.field(
        default=UNSET,
        description="How many of the points the order redeemed or captured, and no refund gave back yet, to "
        "give back.",
    )
    full: bool | None = strawberry.field(
        default=UNSET, description="`true`: refund everything still refundable on the order."
    )


@strawberry.type
class PointsRefund:
    order_ref: str
    member_id: strawberry.ID
    refunded_by: str = strawberry.field(graphql_type=RefundKindEnum)
    refunded: Money | None = strawberry.field(
        description="The share of the order's total this refund covers; null when the total is not known."
    )
    refunded_total: Money | None = strawberry.field(
        description="Everything refunded on the order so far; null when its total is not known."
    )
    order_total: Money | None
    points_taken_back: Long = strawberry.field(description="Earned points taken back by this refund.")
    points_given_back: Long = strawberry.field(description="Redeemed points given back by this refund.")
    shortfall: Long = strawberry.field(
        description="Earned points the member had already spent, so not taken back."
    )
    shortfall_settled: Long = strawberry.field(
        description="Points given back by this refund that went to settle the member's shortfalls on earlier "
        "refunds, so not added to the balance."
    )
    already_expired: Long = strawberry.field(
        description="Earned points of the order not taken back because they had expired already."
    )
    points_refundable: Long = strawberry.field(
        description="Redeemed points still left to give back: the most a later refund by points may ask for."
    )
    referral_taken_back: Long = strawberry.field(
        description="The member's referral points taken back: this return, within the programme's return "
        "window, left the purchase that earned them short of the referral minimum."
    )
    balance: Long
    available: Long

    @classmethod
    def of(cls, read: RefundRead) -> PointsRefund:
        return cls(
            order_ref=read.order_ref,
            member_id=strawberry.ID(str(read.member_id)),
            refunded_by=read.refunded_by,
            refunded=Money.of_read(read.refunded),
            refunded_total=Money.of_read(read.refunded_total),
            order_total=Money.of_read(read.order_total),
            points_taken_back=Long(read.points_taken_back),
            points_given_back=Long(read.points_given_back),
            shortfall=Long(read.shortfall),
            shortfall_settled=Long(read.shortfall_settled),
            already_expired=Long(read.already_expired),
            points_refundable=Long(read.points_refundable),
            referral_taken_back=Long(read.referral_taken_back),
            balance=Long(read.balance),
            available=Long(read.available),
        )


@strawberry.type
class RefundPointsPayload(MutationPayload):
    refund: PointsRefund | None


async def _refund(uow: UnitOfWork, caller: Principal, request: _Refund) -> RefundRead:
    result = await refunds.refund(
        uow,
        order_ref=request.order_ref,
        amount=None if request.amount is None else request.amount.money(),
        points=request.points,
        full=request.full is True,
        actor=caller.key_id,
    )
    return RefundRead.model_validate(result)


# --- Adjust: POST /v1/members/{id}/adjustments (admin keys only)


class _Adjust(AdjustmentRequest):
    member_id: uuid.UUID


@strawberry.input(description="Points added or taken away by hand, as POST /v1/members/{id}/adjustments.")
class AdjustPointsInput:
    member_id: strawberry.ID
    points: Long = strawberry.field(description="Signed: negative takes points away; not zero.")
    reason: str = strawberry.field(description="Kept in the ledger with the key that made the change.")


@strawberry.type
class PointsAdjustment:
    entry_id: strawberry.ID = strawberry.field(description="The ledger entry the adjustment made.")
    points: Long
    reason: str
    balance: Long
    available: Long

    @classmethod
    def of(cls, read: AdjustmentRead) -> PointsAdjustment:
        return cls(
            entry_id=strawberry.ID(str(read.entry_id)),
            points=Long(read.points),
            reason=read.reason,
            balance=Long(read.balance),
            available=Long(read.available),
        )


@strawberry.type
class AdjustPointsPayload(MutationPayload):
    adjustment: PointsAdjustment | None


async def _adjust(uow: UnitOfWork, caller: Principal, request: _Adjust) -> AdjustmentRead:
    result = await service.adjust(
        uow, member_id=request.member_id, points=request.points, reason=request.reason, actor=caller.key_id
    )
    return AdjustmentRead.model_validate(result)


# --- Transfer: POST /v1/members/{id}/transfers


class _Transfer(TransferRequest):
    member_id: uuid.UUID


@strawberry.input(description="Points one member sends another, as POST /v1/members/{id}/transfers.")
class TransferPointsInput:
    member_id: strawberry.ID = strawberry.field(description="The member who sends the points.")
    to_member_id: strawberry.ID = strawberry.field(description="The member who receives them.")
    points: Long


@strawberry.type
class PointsTransfer:
    transfer_id: strawberry.ID = strawberry.field(
        description="Both members' ledger entries name it, as their events do."
    )
    from_member_id: strawberry.ID
    to_member_id: strawberry.ID
    points: Long
    balance: Long = strawberry.field(description="The sender's balance after the transfer.")
    available: Long = strawberry.field(description="The sender's available points after the transfer.")
    created_at: datetime.datetime

    @classmethod
    def of(cls, read: TransferRead) -> PointsTransfer:
        return cls(
            transfer_id=strawberry.ID(str(read.transfer_id)),
            from_member_id=strawberry.ID(str(read.from_member_id)),
            to_member_id=strawberry.ID(str(read.to_member_id)),
            points=Long(read.points),
            balance=Long(read.balance),
            available=Long(read.available),
            created_at=read.created_at,
        )


@strawberry.type
class TransferPointsPayload(MutationPayload):
    transfer: PointsTransfer | None


async def _transfer(uow: UnitOfWork, caller: Principal, request: _Transfer) -> TransferRead:
    result = await transfers.transfer(
        uow,
        from_member_id=request.member_id,
        to_member_id=request.to_member_id,
        points=request.points,
        actor=caller.key_id,
    )
    return TransferRead.model_validate(result)


# --- Reverse a transfer: POST /v1/members/{id}/transfers/{transfer_id}/reversal (admin keys only)


class _ReverseTransfer(TransferReversalRequest):
    member_id: uuid.UUID
    transfer_id: uuid.UUID


@strawberry.input(
    description="An operator's undoing of a transfer: POST /v1/members/{id}/transfers/{transferId}/reversal."
)
class ReverseTransferInput:
    member_id: strawberry.ID = strawberry.field(description="The member who sent the transfer.")
    transfer_id: strawberry.ID
    reason: str = strawberry.field(description="Kept in both ledgers with the key.")


@strawberry.type
class PointsTransferReversal:
    transfer_id: strawberry.ID
    from_member_id: strawberry.ID = strawberry.field(description="The sender, who has the points back.")
    to_member_id: strawberry.ID
    points: Long
    balance: Long = strawberry.field(description="The sender's balance after the reversal.")
    recipient_balance: Long = strawberry.field(description="The recipient's balance after the reversal.")
    reversed_at: datetime.datetime

    @classmethod
    def of(cls, read: TransferReversalRead) -> PointsTransferReversal:
        return cls(
            transfer_id=strawberry.ID(str(read.transfer_id)),
            from_member_id=strawberry.ID(str(read.from_member_id)),
            to_member_id=strawberry.ID(str(read.to_member_id)),
            points=Long(read.points),
            balance=Long(read.balance),
            recipient_balance=Long(read.recipient_balance),
            reversed_at=read.reversed_at,
        )


@strawberry.type
class ReverseTransferPayload(MutationPayload):
    reversal: PointsTransferReversal | None


async def _reverse_transfer(
    uow: UnitOfWork, caller: Principal, request: _ReverseTransfer
) -> TransferReversalRead:
    result = await transfers.reverse_transfer(
        uow,
        member_id=request.member_id,
        transfer_id=request.transfer_id,
        reason=request.reason,
        actor=caller.key_id,
    )
    return TransferReversalRead.model_validate(result)


@strawberry.type
class PointsMutations:
    loyalty_earn_points: EarnPointsPayload | None = mutation(
        input=EarnPointsInput,
        payload=EarnPointsPayload,
        scopes=TILLS,
        model=_Earn,
        reply=EarnRead,
        work=_earn,
        answer={"earned": PointsEarned.of},
        description="Earn points for a purchase: POST /v1/members/{id}/earn, with its rules and answers.",
    )
    loyalty_redeem_points: RedeemPointsPayload | None = mutation(
        input=RedeemPointsInput,
        payload=RedeemPointsPayload,
        scopes=TILLS,
        model=_Redeem,
        reply=RedeemRead,
        work=_redeem,
        answer={"redeemed": PointsRedeemed.of},
        description="Pay with points: POST /v1/members/{id}/redeem, with its rules and answers.",
    )
    loyalty_hold_points: HoldPointsPayload | None = mutation(
        input=HoldPointsInput,
        payload=HoldPointsPayload,
        scopes=TILLS,
        model=_Hold,
        reply=HoldRead,
        work=_hold,
        answer={"hold": PointsHold.of},
        description="Hold points for a checkout: POST /v1/members/{id}/holds, with its rules and answers.",
    )
    loyalty_capture_points: CapturePointsPayload | None = mutation(
        input=CapturePointsInput,
        payload=CapturePointsPayload,
        scopes=TILLS,
        model=_Capture,
        reply=HoldRead,
        work=_capture,
        answer={"hold": PointsHold.of},
        description="Spend held points (the order shipped): POST /v1/holds/{id}/capture.",
    )
    loyalty_release_points: ReleasePointsPayload | None = mutation(
        input=ReleasePointsInput,
        payload=ReleasePointsPayload,
        scopes=TILLS,
        model=_Release,
        reply=HoldRead,
        work=_release,
        answer={"hold": PointsHold.of},
        description="Free held points (the order was cancelled): POST /v1/holds/{id}/release.",
    )
    loyalty_refund_points: RefundPointsPayload | None = mutation(
        input=RefundPointsInput,
        payload=RefundPointsPayload,
        scopes=TILLS,
        model=_Refund,
        reply=RefundRead,
        work=_refund,
        answer={"refund": PointsRefund.of},
        description="Refund an order by amount, by points or in full: POST /v1/orders/{orderRef}/refund.",
        subject=("orders", "order_ref"),
    )
    loyalty_adjust_points: AdjustPointsPayload | None = mutation(
        input=AdjustPointsInput,
        payload=AdjustPointsPayload,
        scopes=OPERATORS,
        model=_Adjust,
        reply=AdjustmentRead,
        work=_adjust,
        answer={"adjustment": PointsAdjustment.of},
        description="Add or remove points by hand, with a reason (admin keys only): "
        "POST /v1/members/{id}/adjustments. Send an `idempotencyKey`: a retry without one adjusts again.",
    )
    loyalty_transfer_points: TransferPointsPayload | None = mutation(
        input=TransferPointsInput,
        payload=TransferPointsPayload,
        scopes=SELLERS,
        model=_Transfer,
        reply=TransferRead,
        work=_transfer,
        answer={"transfer": PointsTransfer.of},
        description="Send points to another member (ecommerce and admin keys): "
        "POST /v1/members/{id}/transfers, with its rules and answers.",
    )
    loyalty_reverse_transfer: ReverseTransferPayload | None = mutation(
        input=ReverseTransferInput,
        payload=ReverseTransferPayload,
        scopes=OPERATORS,
        model=_ReverseTransfer,
        reply=TransferReversalRead,
        work=_reverse_transfer,
        answer={"reversal": PointsTransferReversal.of},
        description="Undo a transfer the member sent (admin keys only): "
        "POST /v1/members/{id}/transfers/{transferId}/reversal, with its rules and answers.",
    )
