"""Paid-membership subscriptions over GraphQL, reads: a member's subscriptions and their payments, and a
subscription by id, with the same read model, services, scopes and answers as REST's
/v1/members/{id}/subscriptions and /v1/subscriptions/{id}."""

from __future__ import annotations

import datetime
import uuid
from typing import Any, get_args

import strawberry
from strawberry.types import Info

from loyalty_api.graphql.connections import Connection, cursor_of, page_size, paged
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.cost import sliced, unbatched
from loyalty_api.graphql.enums import values_enum
from loyalty_api.graphql.errors import require
from loyalty_api.graphql.ids import parse_id
from loyalty_api.graphql.money import Money
from loyalty_api.graphql.scopes import PAID_MEMBERSHIP_READERS, READERS
from loyalty_api.subscriptions import service
from loyalty_api.subscriptions.errors import SubscriptionNotFound
from loyalty_api.subscriptions.lifecycle import State
from loyalty_api.subscriptions.schemas import PaymentRead, PaymentRequest, SubscriptionRead

SubscriptionState = strawberry.enum(State, name="SubscriptionState")
# The statuses REST's `PaymentRequest.status` allows (what billing reports), and those a payment shows
# (`PaymentRead.status`): the subscriptions domain names no list of its own.
SubscriptionPaymentStatus = values_enum(
    "SubscriptionPaymentStatus",
    get_args(PaymentRequest.model_fields["status"].annotation),
    "Whether billing took a period's fee.",
)
SubscriptionPaymentState = values_enum(
    "SubscriptionPaymentState",
    get_args(PaymentRead.model_fields["status"].annotation),
    "Whether billing took a period's fee; `unused`: a fee taken that a cancel named for a refund, which pays "
    "for nothing since.",
)


@strawberry.type(description="A fee billing reported for one period of a subscription, paid or failed.")
class SubscriptionPayment:
    id: strawberry.ID
    subscription_id: strawberry.ID
    period: int
    status: str = strawberry.field(graphql_type=SubscriptionPaymentState)
    payment_ref: str
    amount: Money
    recorded_at: datetime.datetime
    unused_at: datetime.datetime | None = strawberry.field(
        description=PaymentRead.model_fields["unused_at"].description
    )

    @classmethod
    def of(cls, read: PaymentRead) -> SubscriptionPayment:
        return cls(
            id=strawberry.ID(str(read.id)),
            subscription_id=strawberry.ID(str(read.subscription_id)),
            period=read.period,
            status=read.status,
            payment_ref=read.payment_ref,
            amount=Money.of_read(read.amount),
            recorded_at=read.recorded_at,
            unused_at=read.unused_at,
        )


async def _payments(
    root: Any, info: Info[GraphQLContext, None], first: int = 20, after: str | None = None
) -> Connection[SubscriptionPayment]:
    require(info.context, *PAID_MEMBERSHIP_READERS)
    limit = page_size(first)
    async with info.context.snapshot.read() as uow:
        with paged():
            page = await service.list_payments(
                uow, uuid.UUID(str(root.id)), limit=limit, cursor=cursor_of(after)
            )
    payments = [PaymentRead.model_validate(p) for p in page.items]
    return Connection.of(
        payments, page.next_cursor, SubscriptionPayment.of, lambda p: page.cursor_after(p.id)
    )


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
            price=Money.of_read(s.price),
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
        description="Paid-membership subscriptions, the newest `first`. To page through them all (with "
        "REST's cursors), use loyaltyMemberSubscriptions.",
        directives=[sliced()],
    )


async def _member_subscriptions(
    info: Info[GraphQLContext, None], member_id: strawberry.ID, first: int = 20, after: str | None = None
) -> Connection[MemberSubscription]:
    require(info.context, *PAID_MEMBERSHIP_READERS)
    owner = parse_id(str(member_id), "memberId")
    limit = page_size(first)
    async with info.context.snapshot.read() as uow:
        with paged():
            page = await service.list_member_subscriptions(uow, owner, limit=limit, cursor=cursor_of(after))
    return Connection.of(
        page.items,
        page.next_cursor,
        lambda s: MemberSubscription.of(SubscriptionRead.model_validate(s)),
        lambda s: page.cursor_after(s.id),  # REST's cursor after this subscription
    )


async def _subscription(info: Info[GraphQLContext, None], id: strawberry.ID) -> MemberSubscription | None:
    require(info.context, *PAID_MEMBERSHIP_READERS)
    subscription_id = parse_id(str(id), "id")
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
    # A root field, not Member's: billing reads a member's subscriptions (as REST lets it) but not the member.
    # Member.subscriptions stays the list it was: a connection in its place would break every query of it.
    loyalty_member_subscriptions: Connection[MemberSubscription] = strawberry.field(
        resolver=_member_subscriptions,
        description="A member's subscriptions, newest first, ended ones too, page by page: GET "
        "/v1/members/{id}/subscriptions, with its cursors. An unknown member is the error member_not_found.",
        directives=[sliced(sized_fields=["edges"])],
    )
