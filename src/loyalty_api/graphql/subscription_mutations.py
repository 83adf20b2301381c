"""Paid-membership subscriptions over GraphQL, changes: subscribe, cancel, resume, change plan and record a
payment through the same services, rules and scopes as REST's /v1/members/{id}/subscriptions and
/v1/subscriptions/{id}/… endpoints."""

from __future__ import annotations

import uuid

import strawberry
from pydantic import BaseModel, ConfigDict
from strawberry.types.unset import UNSET

from loyalty_api.auth.principal import Principal
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.graphql.money import MoneyInput
from loyalty_api.graphql.mutation import MutationPayload, mutation
from loyalty_api.graphql.scopes import BILLING, SELLERS
from loyalty_api.graphql.subscriptions import (
    MemberSubscription,
    SubscriptionPayment,
    SubscriptionPaymentStatus,
)
from loyalty_api.subscriptions import service
from loyalty_api.subscriptions.schemas import (
    CancelRequest,
    PaymentRequest,
    PaymentResultRead,
    PlanChangeRequest,
    SubscriptionCreate,
    SubscriptionRead,
)

# Each input mirrors its REST body with the path's id added; the models below are REST's bodies with that id,
# so the input is checked by the same rules.


class _Subscribe(SubscriptionCreate):
    member_id: uuid.UUID


class _Cancel(CancelRequest):
    subscription_id: uuid.UUID


class _Resume(BaseModel):
    model_config = ConfigDict(extra="forbid")  # REST's resume has no body: only the path's id

    subscription_id: uuid.UUID


class _ChangePlan(PlanChangeRequest):
    subscription_id: uuid.UUID


class _RecordPayment(PaymentRequest):
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
        default=UNSET,
        description="Required for an upgrade (a plan dearer per month whose period runs at least as long), "
        "whose new period starts now; refused for a change that waits for period end.",
    )


@strawberry.input(description="POST /v1/subscriptions/{id}/payments.")
class RecordSubscriptionPaymentInput:
    subscription_id: strawberry.ID
    status: str = strawberry.field(graphql_type=SubscriptionPaymentStatus)
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


async def _subscribe(uow: UnitOfWork, caller: Principal, request: _Subscribe) -> SubscriptionRead:
    view = await service.subscribe(
        uow,
        member_id=request.member_id,
        plan_code=request.plan,
        payment_ref=request.payment_ref,
        trial=request.trial,
        actor=caller.key_id,
    )
    return SubscriptionRead.model_validate(view)


async def _cancel(uow: UnitOfWork, _: Principal, request: _Cancel) -> SubscriptionRead:
    view = await service.cancel(uow, request.subscription_id, at_period_end=request.at_period_end)
    return SubscriptionRead.model_validate(view)


async def _resume(uow: UnitOfWork, _: Principal, request: _Resume) -> SubscriptionRead:
    return SubscriptionRead.model_validate(await service.resume(uow, request.subscription_id))


async def _change_plan(uow: UnitOfWork, caller: Principal, request: _ChangePlan) -> SubscriptionRead:
    view = await service.change_plan(
        uow,
        request.subscription_id,
        plan_code=request.plan,
        payment_ref=request.payment_ref,
        actor=caller.key_id,
    )
    return SubscriptionRead.model_validate(view)


async def _record_payment(uow: UnitOfWork, caller: Principal, request: _RecordPayment) -> PaymentResultRead:
    outcome = await service.record_payment(
        uow,
        request.subscription_id,
        succeeded=request.status == "succeeded",
        payment_ref=request.payment_ref,
        amount=request.amount.money(),
        period=request.period,
        actor=caller.key_id,
    )
    return PaymentResultRead.model_validate(outcome)


@strawberry.type
class SubscriptionMutations:
    loyalty_subscribe_to_plan: SubscribeToPlanPayload | None = mutation(
        input=SubscribeToPlanInput,
        payload=SubscribeToPlanPayload,
        scopes=SELLERS,
        model=_Subscribe,
        reply=SubscriptionRead,
        work=_subscribe,
        answer={"subscription": MemberSubscription.of},
        description="Subscribe a member to a plan, with its trial or paying the first period: POST "
        "/v1/members/{id}/subscriptions, with its rules and answers.",
    )
    loyalty_cancel_subscription: CancelSubscriptionPayload | None = mutation(
        input=CancelSubscriptionInput,
        payload=CancelSubscriptionPayload,
        scopes=SELLERS,
        model=_Cancel,
        reply=SubscriptionRead,
        work=_cancel,
        answer={"subscription": MemberSubscription.of},
        description="Cancel at period end (benefits kept until then) or now: POST "
        "/v1/subscriptions/{id}/cancel.",
    )
    loyalty_resume_subscription: ResumeSubscriptionPayload | None = mutation(
        input=ResumeSubscriptionInput,
        payload=ResumeSubscriptionPayload,
        scopes=SELLERS,
        model=_Resume,
        reply=SubscriptionRead,
        work=_resume,
        answer={"subscription": MemberSubscription.of},
        description="Undo a pending cancel before the period ends: POST /v1/subscriptions/{id}/resume.",
    )
    loyalty_change_subscription_plan: ChangeSubscriptionPlanPayload | None = mutation(
        input=ChangeSubscriptionPlanInput,
        payload=ChangeSubscriptionPlanPayload,
        scopes=SELLERS,
        model=_ChangePlan,
        reply=SubscriptionRead,
        work=_change_plan,
        answer={"subscription": MemberSubscription.of},
        description="Move to another plan of the family: one dearer per month whose period runs at least as "
        "long now, any other at period end: POST /v1/subscriptions/{id}/change-plan.",
    )
    loyalty_record_subscription_payment: RecordSubscriptionPaymentPayload | None = mutation(
        input=RecordSubscriptionPaymentInput,
        payload=RecordSubscriptionPaymentPayload,
        scopes=BILLING,
        model=_RecordPayment,
        reply=PaymentResultRead,
        work=_record_payment,
        answer={
            "payment": lambda result: SubscriptionPayment.of(result.payment),
            "subscription": lambda result: MemberSubscription.of(result.subscription),
        },
        description="Billing reports the next period's fee, paid or failed: POST "
        "/v1/subscriptions/{id}/payments (billing keys only).",
    )
