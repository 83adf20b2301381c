"""Tiers in GraphQL: the Tier entity (key `code`), and a member's tier status and history."""

from __future__ import annotations

import datetime
import uuid
from typing import Any, get_args, overload

import strawberry
from pydantic import TypeAdapter
from strawberry.scalars import JSON
from strawberry.types import Info

from loyalty_api.errors import InvalidField
from loyalty_api.graphql.connections import Connection, cursor_of, page_size, paged
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.cost import sliced, unbatched
from loyalty_api.graphql.enums import values_enum
from loyalty_api.graphql.errors import as_graphql_error, domain_errors, require
from loyalty_api.graphql.ids import parse_code
from loyalty_api.graphql.money import Long
from loyalty_api.graphql.scopes import READERS
from loyalty_api.http.schemas import TierRef as TierRead
from loyalty_api.tiers import membership
from loyalty_api.tiers.ladder import Metric, TierRef
from loyalty_api.tiers.membership import ChangeKind
from loyalty_api.tiers.schemas import GoalRead, MemberTierRead, TierChangeRead, TierCode
from loyalty_api.tiers.service import get_ladder

_TIER_CODE: TypeAdapter[str] = TypeAdapter(TierCode)
TierMetric = strawberry.enum(Metric, name="TierMetric", description="What a tier is earned by.")


TierChangeKind = values_enum("TierChangeKind", get_args(ChangeKind), "How a member's tier changed.")


@strawberry.federation.type(
    keys=["code"],
    description="A tier as every reply shows one (REST and webhooks too): code, name, rank.",
)
class Tier:
    code: str
    name: str
    rank: int = strawberry.field(description="Higher is better; the lowest rank is everyone's entry tier.")

    @classmethod
    def of(cls, tier: TierRef) -> Tier:
        return cls(code=tier.code, name=tier.name, rank=tier.rank)

    @overload
    @classmethod
    def of_read(cls, tier: TierRead) -> Tier: ...

    @overload
    @classmethod
    def of_read(cls, tier: TierRead | None) -> Tier | None: ...

    @classmethod
    def of_read(cls, tier: TierRead | None) -> Tier | None:
        return None if tier is None else cls(code=tier.code, name=tier.name, rank=tier.rank)

    @classmethod
    async def resolve_reference(cls, info: Info[GraphQLContext, None], **representation: Any) -> Tier | None:
        require(info.context, *READERS)
        code = representation.get("code")
        if not isinstance(code, str):
            message = "a Tier representation needs its key field `code`"
            raise as_graphql_error(InvalidField("representation", message))
        code = parse_code(code, _TIER_CODE, "code")  # as GET /v1/tiers/{code}: `GOLD` is no tier's code
        async with info.context.snapshot.read() as uow:
            tier = (await get_ladder(uow)).by_code(code)
        return None if tier is None else cls.of(tier.ref)


@strawberry.type(description="What reaches a tier (`next`) or keeps it (`keep`).")
class TierGoal:
    tier: Tier
    metric: TierMetric  # type: ignore[valid-type]
    window_start: datetime.datetime = strawberry.field(description="Purchases from this instant on count.")
    value: Long
    threshold: Long
    remaining: Long
    by: datetime.datetime | None = strawberry.field(
        description="The review date by which the goal must be met (keep only)."
    )

    @classmethod
    def of(cls, goal: GoalRead | None) -> TierGoal | None:
        if goal is None:
            return None
        return cls(
            tier=Tier.of_read(goal.tier),
            metric=Metric(goal.metric),
            window_start=goal.window_start,
            value=Long(goal.value),
            threshold=Long(goal.threshold),
            remaining=Long(goal.remaining),
            by=goal.by,
        )


@strawberry.type(description="A member's tier, how long it is kept, and progress: GET /v1/members/{id}/tier.")
class TierStatus:
    tier: Tier | None
    since: datetime.datetime | None
    kept_until: datetime.datetime | None = strawberry.field(
        description="The tier is kept at least until then (then reviewed)."
    )
    override_until: datetime.datetime | None
    next: TierGoal | None = strawberry.field(description="What reaches the next tier up (null at the top).")
    keep: TierGoal | None = strawberry.field(description="What keeps the current tier at its review.")
    ladder_version: int

    @classmethod
    def of(cls, read: MemberTierRead) -> TierStatus:
        return cls(
            tier=Tier.of_read(read.tier),
            since=read.since,
            kept_until=read.kept_until,
            override_until=read.override_until,
            next=TierGoal.of(read.next),
            keep=TierGoal.of(read.keep),
            ladder_version=read.ladder_version,
        )


@strawberry.type
class TierChange:
    id: strawberry.ID
    from_tier: Tier | None
    to_tier: Tier
    change: str = strawberry.field(graphql_type=TierChangeKind)
    reason: str
    ladder_version: int | None
    qualification: dict[str, Any] = strawberry.field(
        graphql_type=JSON, description="Per tier: metric, window start, value, threshold."
    )
    kept_until: datetime.datetime | None
    created_at: datetime.datetime

    @classmethod
    def of(cls, read: TierChangeRead) -> TierChange:
        return cls(
            id=strawberry.ID(str(read.id)),
            from_tier=Tier.of_read(read.from_tier),
            to_tier=Tier.of_read(read.to_tier),
            change=read.change,
            reason=read.reason,
            ladder_version=read.ladder_version,
            qualification=read.qualification,
            kept_until=read.kept_until,
            created_at=read.created_at,
        )


async def _tier_status(root: Any, info: Info[GraphQLContext, None]) -> TierStatus:
    require(info.context, *READERS)
    async with info.context.snapshot.read() as uow:
        with domain_errors():
            found = await membership.status(uow, uuid.UUID(str(root.id)))
    return TierStatus.of(MemberTierRead.model_validate(found))


async def _tier_history(
    root: Any, info: Info[GraphQLContext, None], first: int = 20, after: str | None = None
) -> Connection[TierChange]:
    require(info.context, *READERS)
    async with info.context.snapshot.read() as uow:
        with paged():
            page = await membership.history(
                uow, uuid.UUID(str(root.id)), limit=page_size(first), cursor=cursor_of(after)
            )
    changes = [TierChangeRead.model_validate(c) for c in page.items]
    return Connection.of(changes, page.next_cursor, TierChange.of, lambda c: page.cursor_after(c.id))


@strawberry.type
class MemberTierFields:
    """Member's tier fields (Member inherits them)."""

    tier_status: TierStatus = strawberry.field(
        resolver=_tier_status,
        directives=[unbatched(4)],
        description="Tier, since when, until when it is kept, progress to the next and what keeps it.",
    )
    tier_history: Connection[TierChange] = strawberry.field(
        resolver=_tier_history,
        description="Tier changes, newest first.",
        directives=[sliced(sized_fields=["edges"]), unbatched(2)],
    )
