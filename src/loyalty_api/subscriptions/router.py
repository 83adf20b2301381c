"""Paid membership: a member's subscriptions, their lifecycle, billing's payments, and recurring revenue."""

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
from loyalty_api.subscriptions import errors, service
from loyalty_api.subscriptions.schemas import (
    CancelRequest,
    PaymentPage,
    PaymentRead,
    PaymentRequest,
    PaymentResultRead,
    PlanChangeRequest,
    RevenueRead,
    SubscriptionCreate,
    SubscriptionPage,
    SubscriptionRead,
)

router = APIRouter(prefix="/v1", tags=["paid membership"], route_class=UnitOfWorkRoute)
# Shops sell memberships and back offices manage them; billing reads them and reports payments.
Seller = Annotated[Principal, Depends(require(Scope.admin, Scope.ecommerce))]
Reader = Annotated[Principal, Depends(require(Scope.admin, Scope.ecommerce, Scope.pos, Scope.billing))]
Billing = Annotated[Principal, Depends(require(Scope.billing))]
Operator = Annotated[Principal, Depends(require(Scope.admin))]
_AUTH = (InvalidApiKey, ScopeNotAllowed)


@router.post(
    "/members/{member_id}/subscriptions",
    status_code=201,
    summary="Subscribe a member to a plan (with its trial, or paying the first period)",
    responses=problem_responses(
        *_AUTH,
        MemberNotFound,
        MemberNotActive,
        errors.SubscriptionExists,
        errors.TrialAlreadyUsed,
        InvalidField,
    ),
)
async def subscribe(
    member_id: uuid.UUID, body: SubscriptionCreate, uow: UoW, caller: Seller
) -> SubscriptionRead:
    """Subscribe a member to a plan: with its trial (`trial` defaults to true; once per member and plan
    family, else 409 `trial_already_used`), or paying the first period, whose payment billing took under
    `payment_ref` at the plan's price. One live subscription per member and family (409
    `subscription_exists`, naming it in `subscription_id`; also for a subscribe sent again once its plan
    was taken off sale or the member suspended).

    For `ecommerce` and `admin` keys; honours `Idempotency-Key`. A plan that is unknown or not on sale is 422.
    Emits `subscription.created`."""
    view = await service.subscribe(
        uow,
        member_id=member_id,
        plan_code=body.plan,
        payment_ref=body.payment_ref,
        trial=body.trial,
        actor=caller.key_id,
    )
    return SubscriptionRead.model_validate(view)


@router.get(
    "/members/{member_id}/subscriptions",
    summary="A member's subscriptions, newest first (expired ones too)",
    responses=problem_responses(*_AUTH, MemberNotFound, InvalidField),
)
async def list_member_subscriptions(
    member_id: uuid.UUID, uow: UoW, _: Reader, paging: Paging
) -> SubscriptionPage:
    """A member's subscriptions, newest first, page by page, ended ones too.

    For `pos`, `ecommerce`, `billing` and `admin` keys. Reads only."""
    page = await service.list_member_subscriptions(uow, member_id, limit=paging.limit, cursor=paging.cursor)
    return SubscriptionPage(
        items=[SubscriptionRead.model_validate(s) for s in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/subscriptions/{subscription_id}",
    summary="Read a subscription",
    responses=problem_responses(*_AUTH, errors.SubscriptionNotFound),
)
async def read_subscription(subscription_id: uuid.UUID, uow: UoW, _: Reader) -> SubscriptionRead:
    """A subscription: its state (`trialing`, `active`, `past_due`, `canceled`, `expired`), the current period
    and its price, until when the benefits last, and any pending cancel or downgrade.

    For `pos`, `ecommerce`, `billing` and `admin` keys. Reads only."""
    return SubscriptionRead.model_validate(await service.get_subscription(uow, subscription_id))


@router.post(
    "/subscriptions/{subscription_id}/cancel",
    summary="Cancel at period end (benefits kept until then) or now",
    responses=problem_responses(*_AUTH, errors.SubscriptionNotFound, errors.TransitionNotAllowed),
)
async def cancel(
    subscription_id: uuid.UUID, uow: UoW, _: Seller, body: CancelRequest | None = None
) -> SubscriptionRead:
    """Cancel a subscription: `at_period_end: true` (the default, also with no body) keeps the benefits to the
    end of the period (`resume` undoes it until then); false ends it now. A past-due subscription has no paid
    time left and ends now. A pending downgrade is kept through a cancel at period end, so a resume renews
    onto it.

    For `ecommerce` and `admin` keys; honours `Idempotency-Key`. Emits `subscription.canceled`
    (`unused_payment` names a fee billing took for a period that will not begin, to refund it), and
    `subscription.expired` when it ends now."""
    # The body's one field has a default, so the body itself may be left out.
    view = await service.cancel(uow, subscription_id, at_period_end=(body or CancelRequest()).at_period_end)
    return SubscriptionRead.model_validate(view)


@router.post(
    "/subscriptions/{subscription_id}/resume",
    summary="Undo a pending cancel",
    responses=problem_responses(
        *_AUTH, errors.SubscriptionNotFound, MemberNotActive, errors.TransitionNotAllowed
    ),
)
async def resume(subscription_id: uuid.UUID, uow: UoW, _: Seller) -> SubscriptionRead:
    """Undo a pending cancel before the period ends: the subscription renews again (onto a downgrade pending
    before the cancel, if any). No body. When the next period's price changed while it was canceled, or the
    cancel named a fee paid ahead for a refund, billing gets a new `subscription.renewal_due`.

    For `ecommerce` and `admin` keys; honours `Idempotency-Key`. A subscription without a pending cancel is
    409 `subscription_transition_not_allowed`; a suspended or closed member's is 409 `member_not_active`, as
    at subscribe (a cancel stays open to them). Emits `subscription.resumed`."""
    return SubscriptionRead.model_validate(await service.resume(uow, subscription_id))


@router.post(
    "/subscriptions/{subscription_id}/change-plan",
    summary="Change plan within the family: dearer per month, as long or longer now, others at period end",
    responses=problem_responses(
        *_AUTH,
        errors.SubscriptionNotFound,
        MemberNotActive,
        errors.TransitionNotAllowed,
        errors.PaymentRefReused,
        errors.PeriodAlreadyPaid,
        InvalidField,
    ),
)
async def change_plan(
    subscription_id: uuid.UUID, body: PlanChangeRequest, uow: UoW, caller: Seller
) -> SubscriptionRead:
    """Move to another plan of the same family. A plan dearer per month than the current period and whose
    period runs at least as long is an upgrade that starts now with a new paid period, which `payment_ref`
    pays. Any other is a downgrade that takes over at period end (`pending_plan`), so the time already paid
    for is never thrown away (a yearly plan moving to a monthly one keeps its year, even when the month is
    dearer per month; a monthly plan moving to a year cheaper per month keeps its paid month); nothing is
    paid for it now, and a `payment_ref` with it is 422. Naming the current plan drops a pending downgrade;
    naming the pending one again, or an upgrade again with the `payment_ref` that paid it, changes nothing and
    emits nothing. A suspended or closed member's plan is not changed: 409 `member_not_active`, as at
    subscribe.

    For `ecommerce` and `admin` keys; honours `Idempotency-Key`. Emits `subscription.plan_changed`."""
    view = await service.change_plan(
        uow, subscription_id, plan_code=body.plan, payment_ref=body.payment_ref, actor=caller.key_id
    )
    return SubscriptionRead.model_validate(view)


@router.post(
    "/subscriptions/{subscription_id}/payments",
    status_code=201,
    summary="Billing reports a fee paid or failed for the next period",
    responses=problem_responses(
        *_AUTH,
        errors.SubscriptionNotFound,
        errors.TransitionNotAllowed,
        errors.PaymentNotDue,
        errors.PaymentAmountMismatch,
        errors.PeriodAlreadyPaid,
        errors.PaymentRefReused,
    ),
)
async def record_payment(
    subscription_id: uuid.UUID, body: PaymentRequest, uow: UoW, caller: Billing
) -> PaymentResultRead:
    """Billing reports the fee for the next period (`period` = current + 1) at the price due for it, succeeded
    or failed. A success while past due renews at once; otherwise the renewal job uses it at period end. A
    failure changes nothing by itself. The same `payment_ref` again answers the same payment. The price due is
    the one in the latest `subscription.renewal_due`: a price change sends a new one, past due included.

    For `billing` keys only; honours `Idempotency-Key`. Another period or amount is 422 `payment_not_due` or
    422 `payment_amount_mismatch`. Emits `subscription.renewed` when it renews at once."""
    outcome = await service.record_payment(
        uow,
        subscription_id,
        succeeded=body.status == "succeeded",
        payment_ref=body.payment_ref,
        amount=body.amount.money(),
        period=body.period,
        actor=caller.key_id,
    )
    return PaymentResultRead.model_validate(outcome)


@router.get(
    "/subscriptions/{subscription_id}/payments",
    summary="The payments billing reported for a subscription, newest first",
    responses=problem_responses(*_AUTH, errors.SubscriptionNotFound, InvalidField),
)
async def list_payments(subscription_id: uuid.UUID, uow: UoW, _: Reader, paging: Paging) -> PaymentPage:
    """The payments billing reported for a subscription, newest first, page by page, failed ones too.

    For `pos`, `ecommerce`, `billing` and `admin` keys. Reads only."""
    page = await service.list_payments(uow, subscription_id, limit=paging.limit, cursor=paging.cursor)
    return PaymentPage(
        items=[PaymentRead.model_validate(p) for p in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/analytics/paid-membership",
    summary="Paying members and monthly recurring revenue, by plan",
    responses=problem_responses(*_AUTH),
)
async def read_revenue(uow: UoW, _: Operator) -> RevenueRead:
    """Paying members (active, or canceled with a paid period running) and monthly recurring revenue at each
    subscription's current price (a yearly plan counts 1/12), with trialing and past-due counts per plan.

    For `admin` keys only. Reads only."""
    return RevenueRead.model_validate(await service.revenue(uow))
