"""Activities over GraphQL: a member's activity rewarded through the same service, rules and scopes as
POST /v1/members/{id}/activities. (Activity rules and the leaderboard are REST only.)"""

from __future__ import annotations

import datetime
import uuid

import strawberry

from loyalty_api.activities import service
from loyalty_api.activities.schemas import ActivityRead, ActivityRequest
from loyalty_api.auth.principal import Principal
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.graphql.cost import assumed
from loyalty_api.graphql.money import Long
from loyalty_api.graphql.mutation import MutationPayload, mutation
from loyalty_api.graphql.points_mutations import EarnBreakdown
from loyalty_api.graphql.scopes import TILLS


class _Record(ActivityRequest):
    member_id: uuid.UUID


@strawberry.input(description="An activity to reward, as the body of POST /v1/members/{id}/activities.")
class RecordActivityInput:
    member_id: strawberry.ID
    type: str = strawberry.field(description="`check_in`, `review`, `share`, `profile_completed`, …")
    ref: str = strawberry.field(description="Your id for the activity: the same ref of a type earns once.")


@strawberry.type
class Activity:
    id: strawberry.ID
    member_id: strawberry.ID
    type: str
    ref: str
    rule_id: strawberry.ID
    points_earned: Long
    breakdown: list[EarnBreakdown] = strawberry.field(directives=[assumed(5)])
    streak: int = strawberry.field(description="Consecutive programme days with this type, this one's too.")
    day: datetime.date = strawberry.field(description="The programme day the activity counted on.")
    balance: Long
    recorded_at: datetime.datetime = strawberry.field(
        description="When it was first rewarded: the same ref again answers this first result."
    )
    already_recorded: bool = strawberry.field(
        description="True when the ref was rewarded before: this is that first result, and nothing was "
        "earned now."
    )

    @classmethod
    def of(cls, read: ActivityRead) -> Activity:
        return cls(
            id=strawberry.ID(str(read.id)),
            member_id=strawberry.ID(str(read.member_id)),
            type=read.type,
            ref=read.ref,
            rule_id=strawberry.ID(str(read.rule_id)),
            points_earned=Long(read.points_earned),
            breakdown=[
                EarnBreakdown(rule=b.rule, kind=b.kind, points=Long(b.points)) for b in read.breakdown
            ],
            streak=read.streak,
            day=read.day,
            balance=Long(read.balance),
            recorded_at=read.recorded_at,
            already_recorded=read.already_recorded,
        )


@strawberry.type
class RecordActivityPayload(MutationPayload):
    activity: Activity | None


async def _record(uow: UnitOfWork, caller: Principal, request: _Record) -> ActivityRead:
    found = await service.record_activity(
        uow, member_id=request.member_id, type=request.type, ref=request.ref, actor=caller.key_id
    )
    return ActivityRead.model_validate(found)


@strawberry.type
class ActivityMutations:
    loyalty_record_activity: RecordActivityPayload | None = mutation(
        input=RecordActivityInput,
        payload=RecordActivityPayload,
        scopes=TILLS,
        model=_Record,
        reply=ActivityRead,
        work=_record,
        answer={"activity": Activity.of},
        description="Reward a member for an activity (a check-in, a review, …) within the rule's caps: "
        "POST /v1/members/{id}/activities, with its rules and answers.",
    )
