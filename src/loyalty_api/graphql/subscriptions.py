"""Paid-membership subscriptions in GraphQL."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from loyalty_api.graphql.connections import page_size
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.cost import sliced
from loyalty_api.graphql.errors import require
from loyalty_api.graphql.scopes import READERS
from loyalty_api.subscriptions.service import SubscriptionView


@strawberry.type
class MemberSubscription:
    id: strawberry.ID
    plan: str
    plan_name: str
    state: str
    period: int
    period_end: datetime.datetime
    benefits_until: datetime.datetime | None
    cancel_at_period_end: bool

    @classmethod
    def of(cls, s: SubscriptionView) -> MemberSubscription:
        return cls(
            id=strawberry.ID(str(s.id)),
            plan=s.plan.code,
            plan_name=s.plan.name,
            state=s.state,
            period=s.period,
            period_end=s.period_end,
            benefits_until=s.benefits_until,
            cancel_at_period_end=s.cancel_at_period_end,
        )


async def _subscriptions(
    root: Any, info: Info[GraphQLContext, None], first: int = 20
) -> list[MemberSubscription]:
    require(info.context, *READERS)
    found = await info.context.loaders.subscriptions.load((uuid.UUID(str(root.id)), page_size(first)))
    return [MemberSubscription.of(s) for s in found]


@strawberry.type
class MemberSubscriptionFields:
    """Member's subscription fields (Member inherits them)."""

    subscriptions: list[MemberSubscription] = strawberry.field(
        resolver=_subscriptions,
        description="Paid-membership subscriptions, newest first.",
        directives=[sliced()],
    )
