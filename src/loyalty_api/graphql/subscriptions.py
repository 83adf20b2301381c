"""Paid-membership subscriptions in GraphQL: the same read model, services, scopes and answers as REST's
/v1/members/{id}/subscriptions and /v1/subscriptions/{id}/… endpoints."""

from __future__ import annotations

import datetime
import uuid
from enum import StrEnum
from typing import Any

import strawberry
from pydantic import BaseModel, ConfigDict
from strawberry.types import Info
from strawberry.types.unset import UNSET

from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.db.pagination import encode_cursor
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.graphql.connections import Connection, page_size
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.cost import sliced, unbatched
from loyalty_api.graphql.errors import as_graphql_error, domain_errors, require
from loyalty_api.graphql.money import Long, Money, MoneyInput
from loyalty_api.graphql.mutation import MutationPayload, body_of, run_mutation
from loyalty_api.graphql.scopes import READERS
from loyalty_api.http.schemas import MoneyRead
from loyalty_api.subscriptions import service
from loyalty_api.subscriptions.errors import SubscriptionNotFound
from loyalty_api.subscriptions.lifecycle import State
from loyalty_api.subscriptions.schemas import (
    CancelBody,
    PaymentBody,
    PaymentOutcomeRead,
    PaymentRead,
    PlanChangeBody,
    SubscriptionCreate,
    SubscriptionRead,
)

# The scopes of REST's paid-membership endpoints: shops and back offices sell and manage subscriptions,
# billing reads them and alone reports payments.
SUBSCRIPTION_READERS = (*READERS, Scope.billing)
SELLERS = (Scope.admin, Scope.ecommerce)
BILLING = (Scope.billing,)

SubscriptionState = strawberry.enum(State, name="SubscriptionState")


class PaymentStatus(StrEnum):
    succeeded = "succeeded"
    failed = "failed"


SubscriptionPaymentStatus = strawberry.enum(PaymentStatus, name="SubscriptionPaymentStatus")


def _money(read: MoneyRead) -> Money:
    return Money(amount=Long(read.amount), currency=read.currency)


@strawberry.type(description="A fee billing reported for one period of a subscription, paid or failed.")
class SubscriptionPayment:
    id: strawberry.ID
    subscription_id: strawberry.ID
    period: int
    status: SubscriptionPaymentStatus  # type: ignore[valid-type]
    payment_ref: str
    amount: Money
    recorded_at: datetime.datetime

    @classmethod
    def of(cls, read: PaymentRead) -> SubscriptionPayment:
        return cls(
            id=strawberry.ID(str(read.id)),
            subscription_id=strawberry.ID(str(read.subscription_id)),
            period=read.period,
            status=PaymentStatus(read.status),
            payment_ref=read.payment_ref,
            amount=_money(read.amount),
            recorded_at=read.recorded_at,
        )


async def _payments(
    root: Any, info: Info[GraphQLContext, None], first: int = 20, after: str | None = None
) -> Connection[SubscriptionPayment]:
    require(info.context, *SUBSCRIPTION_READERS)
    limit = page_size(first)
    async with info.context.snapshot.read() as uow:
        with domain_errors():
            page = await service.list_payments(uow, uuid.UUID(str(root.id)), limit=limit, cursor=after)
    payments = [PaymentRead.model_validate(p) for p in page.items]
    return Connection.of(payments, page.next_cursor, SubscriptionPayment.of, lambda p: encode_cursor(p.id))


@strawberry.type
class MemberSubscription:
    id: strawberry.ID
    member_id: strawberry.ID
    plan: str = strawberry.field(description="The plan's code.")
    plan_name: str
    family: str
    state: SubscriptionState  # type: ignore[valid-type]
    period: int = strawberry.field(description="0 is the trial; paid periods count from 1.")
    period_start: datetime.datetime
    period_end: datetime.datetime
    trial_end: datetime.datetime | None
    price: Money = strawberry.field(description="The current period's price.")
    grace_until: datetime.datetime | None = strawberry.field(
        description="Past due: the benefits last until then."
    )
    benefits_until: datetime.datetime | None = strawberry.field(
        description="The plan's benefits are the member's until then."
    )
    cancel_at_period_end: bool
    pending_plan: str | None = strawberry.field(
        description="The code of a downgrade that takes over at period end."
    )
    pending_plan_name: str | None
    payment_ref: str | None
    canceled_at: datetime.datetime | None
    ended_at: datetime.datetime | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    payments: Connection[SubscriptionPayment] = strawberry.field(
        resolver=_payments,
        description="The payments billing reported, newest first, failed ones too.",
        directives=[sliced(sized_fields=["edges"]), unbatched(1)],
    )

    @classmethod
    def of(cls, s: SubscriptionRead) -> MemberSubscription:
        pending = s.pending_plan
        return cls(
            id=strawberry.ID(str(s.id)),
            member_id=strawberry.ID(str(s.member_id)),
            plan=s.plan.code,
            plan_name=s.plan.name,
            family=s.family,
            state=s.state,
            period=s.period,
            period_start=s.period_start,
            period_end=s.period_end,
            trial_end=s.trial_end,
            price=_money(s.price),
            grace_until=s.grace_until,
            benefits_until=s.benefits_until,
            cancel_at_period_end=s.cancel_at_period_end,
            pending_plan=None if pending is None else pending.code,
            pending_plan_name=None if pending is None else pending.name,
            payment_ref=s.payment_ref,
            canceled_at=s.canceled_at,
            ended_at=s.ended_at,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )


async def _subscriptions(
    root: Any, info: Info[GraphQLContext, None], first: int = 20
) -> list[MemberSubscription]:
    require(info.context, *READERS)
    found = await info.context.loaders.subscriptions.load((uuid.UUID(str(root.id)), page_size(first)))
    return [MemberSubscription.of(SubscriptionRead.model_validate(s)) for s in found]


@strawberry.type
class MemberSubscriptionFields:
    """Member's subscription fields (Member inherits them)."""

    subscriptions: list[MemberSubscription] = strawberry.field(
        resolver=_subscriptions,
        description="Paid-membership subscriptions, newest first.",
        directives=[sliced()],
    )


async def _subscription(info: Info[GraphQLContext, None], id: strawberry.ID) -> MemberSubscription | None:
    require(info.context, *SUBSCRIPTION_READERS)
    try:
        subscription_id = uuid.UUID(str(id))
    except ValueError:
        raise as_graphql_error(InvalidField("id", "must be a UUID")) from None  # as loyaltyMember(id)
    async with info.context.snapshot.read() as uow:
        try:
            view = await service.get_subscription(uow, subscription_id)
        except SubscriptionNotFound:
            return None
    return MemberSubscription.of(SubscriptionRead.model_validate(view))


@strawberry.type
class SubscriptionQueries:
    loyalty_subscription: MemberSubscription | None = strawberry.field(
        resolver=_subscription,
        description="A subscription by id; null when none: GET /v1/subscriptions/{id}.",
    )


# Mutations. Each input mirrors its REST body with the path's id added; the models below are REST's bodies
# with that id, so the input is checked by the same rules.


class _Subscribe(SubscriptionCreate):
    member_id: uuid.UUID


class _Cancel(CancelBody):
    subscription_id: uuid.UUID


class _Resume(BaseModel):
    model_config = ConfigDict(extra="forbid")  # REST's resume has no body: only the path's id

    subscription_id: uuid.UUID


class _ChangePlan(PlanChangeBody):
    subscription_id: uuid.UUID


class _RecordPayment(PaymentBody):
    subscription_id: uuid.UUID


@strawberry.input(description="POST /v1/members/{id}/subscriptions.")
class SubscribeToPlanInput:
    member_id: strawberry.ID
    plan: str = strawberry.field(description="The plan's code; it must be on sale.")
    payment_ref: str | None = strawberry.field(
        default=UNSET,
        description="Required without a trial: billing took the first period's fee under this reference.",
    )
    trial: bool | None = strawberry.field(
        default=UNSET,
        description="Start with the plan's trial, if it has one (once per member and plan family); default "
        "true.",
    )


@strawberry.input(description="POST /v1/subscriptions/{id}/cancel.")
class CancelSubscriptionInput:
    subscription_id: strawberry.ID
    at_period_end: bool | None = strawberry.field(
        default=UNSET,
        description="true (the default): keep the benefits to the end of the period; false: end now.",
    )


@strawberry.input(description="POST /v1/subscriptions/{id}/resume.")
class ResumeSubscriptionInput:
    subscription_id: strawberry.ID


@strawberry.input(description="POST /v1/subscriptions/{id}/change-plan.")
class ChangeSubscriptionPlanInput:
    subscription_id: strawberry.ID
    plan: str = strawberry.field(description="A plan of the same family; the current one drops a downgrade.")
    payment_ref: str | None = strawberry.field(
        default=UNSET, description="Required for an upgrade (a dearer plan), whose new period starts now."
    )


@strawberry.input(description="POST /v1/subscriptions/{id}/payments.")
class RecordSubscriptionPaymentInput:
    subscription_id: strawberry.ID
    status: SubscriptionPaymentStatus  # type: ignore[valid-type]
    payment_ref: str
    amount: MoneyInput = strawberry.field(description="The price due for that period.")
    period: int = strawberry.field(description="The period paid for: the next one.")


@strawberry.type
class SubscribeToPlanPayload(MutationPayload):
    subscription: MemberSubscription | None


@strawberry.type
class CancelSubscriptionPayload(MutationPayload):
    subscription: MemberSubscription | None


@strawberry.type
class ResumeSubscriptionPayload(MutationPayload):
    subscription: MemberSubscription | None


@strawberry.type
class ChangeSubscriptionPlanPayload(MutationPayload):
    subscription: MemberSubscription | None


@strawberry.type
class RecordSubscriptionPaymentPayload(MutationPayload):
    payment: SubscriptionPayment | None
    subscription: MemberSubscription | None = strawberry.field(
        description="The subscription after the payment (renewed at once when it was past due)."
    )


async def _do_subscribe(uow: UnitOfWork, caller: Principal, request: _Subscribe) -> SubscriptionRead:
    view = await service.subscribe(
        uow,
        member_id=request.member_id,
        plan_code=request.plan,
        payment_ref=request.payment_ref,
        trial=request.trial,
        actor=caller.key_id,
    )
    return SubscriptionRead.model_validate(view)


async def _do_cancel(uow: UnitOfWork, _: Principal, request: _Cancel) -> SubscriptionRead:
    view = await service.cancel(uow, request.subscription_id, at_period_end=request.at_period_end)
    return SubscriptionRead.model_validate(view)


async def _do_resume(uow: UnitOfWork, _: Principal, request: _Resume) -> SubscriptionRead:
    return SubscriptionRead.model_validate(await service.resume(uow, request.subscription_id))


async def _do_change_plan(uow: UnitOfWork, caller: Principal, request: _ChangePlan) -> SubscriptionRead:
    view = await service.change_plan(
        uow,
        request.subscription_id,
        plan_code=request.plan,
        payment_ref=request.payment_ref,
        actor=caller.key_id,
    )
    return SubscriptionRead.model_validate(view)


async def _do_record_payment(
    uow: UnitOfWork, caller: Principal, request: _RecordPayment
) -> PaymentOutcomeRead:
    outcome = await service.record_payment(
        uow,
        request.subscription_id,
        succeeded=request.status == "succeeded",
        payment_ref=request.payment_ref,
        amount=request.amount.money(),
        period=request.period,
        actor=caller.key_id,
    )
    return PaymentOutcomeRead.model_validate(outcome)


async def _subscribe(
    info: Info[GraphQLContext, None], input: SubscribeToPlanInput, idempotency_key: str | None = None
) -> SubscribeToPlanPayload:
    outcome = await run_mutation(
        info,
        name="loyaltySubscribeToPlan",
        scopes=SELLERS,
        body=body_of(input),
        model=_Subscribe,
        reply=SubscriptionRead,
        work=_do_subscribe,
        idempotency_key=idempotency_key,
    )
    return outcome.answer(SubscribeToPlanPayload, subscription=MemberSubscription.of)


async def _cancel(
    info: Info[GraphQLContext, None], input: CancelSubscriptionInput, idempotency_key: str | None = None
) -> CancelSubscriptionPayload:
    outcome = await run_mutation(
        info,
        name="loyaltyCancelSubscription",
        scopes=SELLERS,
        body=body_of(input),
        model=_Cancel,
        reply=SubscriptionRead,
        work=_do_cancel,
        idempotency_key=idempotency_key,
    )
    return outcome.answer(CancelSubscriptionPayload, subscription=MemberSubscription.of)


async def _resume(
    info: Info[GraphQLContext, None], input: ResumeSubscriptionInput, idempotency_key: str | None = None
) -> ResumeSubscriptionPayload:
    outcome = await run_mutation(
        info,
        name="loyaltyResumeSubscription",
        scopes=SELLERS,
        body=body_of(input),
        model=_Resume,
        reply=SubscriptionRead,
        work=_do_resume,
        idempotency_key=idempotency_key,
    )
    return outcome.answer(ResumeSubscriptionPayload, subscription=MemberSubscription.of)


async def _change_plan(
    info: Info[GraphQLContext, None], input: ChangeSubscriptionPlanInput, idempotency_key: str | None = None
) -> ChangeSubscriptionPlanPayload:
    outcome = await run_mutation(
        info,
        name="loyaltyChangeSubscriptionPlan",
        scopes=SELLERS,
        body=body_of(input),
        model=_ChangePlan,
        reply=SubscriptionRead,
        work=_do_change_plan,
        idempotency_key=idempotency_key,
    )
    return outcome.answer(ChangeSubscriptionPlanPayload, subscription=MemberSubscription.of)


async def _record_payment(
    info: Info[GraphQLContext, None],
    input: RecordSubscriptionPaymentInput,
    idempotency_key: str | None = None,
) -> RecordSubscriptionPaymentPayload:
    outcome = await run_mutation(
        info,
        name="loyaltyRecordSubscriptionPayment",
        scopes=BILLING,
        body=body_of(input),
        model=_RecordPayment,
        reply=PaymentOutcomeRead,
        work=_do_record_payment,
        idempotency_key=idempotency_key,
    )
    return outcome.answer(
        RecordSubscriptionPaymentPayload,
        payment=lambda result: SubscriptionPayment.of(result.payment),
        subscription=lambda result: MemberSubscription.of(result.subscription),
    )


@strawberry.type
class SubscriptionMutations:
    loyalty_subscribe_to_plan: SubscribeToPlanPayload = strawberry.mutation(
        resolver=_subscribe,
        description="Subscribe a member to a plan, with its trial or paying the first period: POST "
        "/v1/members/{id}/subscriptions, with its rules and answers.",
    )
    loyalty_cancel_subscription: CancelSubscriptionPayload = strawberry.mutation(
        resolver=_cancel,
        description="Cancel at period end (benefits kept until then) or now: POST "
        "/v1/subscriptions/{id}/cancel.",
    )
    loyalty_resume_subscription: ResumeSubscriptionPayload = strawberry.mutation(
        resolver=_resume,
        description="Undo a pending cancel before the period ends: POST /v1/subscriptions/{id}/resume.",
    )
    loyalty_change_subscription_plan: ChangeSubscriptionPlanPayload = strawberry.mutation(
        resolver=_change_plan,
        description="Move to another plan of the family, a dearer one now and any other at period end: POST "
        "/v1/subscriptions/{id}/change-plan.",
    )
    loyalty_record_subscription_payment: RecordSubscriptionPaymentPayload = strawberry.mutation(
        resolver=_record_payment,
        description="Billing reports the next period's fee, paid or failed: POST "
        "/v1/subscriptions/{id}/payments (billing keys only).",
    )
