"""/v1/activity-rules (admin) and a member's activities (the tills, the shop, the app)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from loyalty_api.activities import errors, service
from loyalty_api.activities.schemas import (
    ActivityRead,
    ActivityRequest,
    ActivityRuleCreate,
    ActivityRuleList,
    ActivityRuleRead,
    ActivityRuleUpdate,
)
from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import Paging, UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.transaction import UnitOfWorkRoute
from loyalty_api.members.errors import MemberNotActive, MemberNotFound

router = APIRouter(prefix="/v1", tags=["activities"], route_class=UnitOfWorkRoute)
Operator = Annotated[Principal, Depends(require(Scope.admin))]
Till = Annotated[Principal, Depends(require(Scope.admin, Scope.pos, Scope.ecommerce))]
_AUTH = (InvalidApiKey, ScopeNotAllowed)


@router.post(
    "/activity-rules",
    status_code=201,
    summary="Create an activity rule",
    responses=problem_responses(*_AUTH, errors.ActivityRuleExists, InvalidField),
)
async def create_activity_rule(body: ActivityRuleCreate, uow: UoW, _: Operator) -> ActivityRuleRead:
    """Say what one type of activity earns: `points` each time, at most `daily_cap` rewarded activities a
    programme day and `period_cap` a `cap_period` (week, month, year or lifetime, in the programme's time
    zone), and `streak_bonuses`: `{days: 7, points: 50}` gives 50 more on every 7th consecutive day. The rule
    is in force while `active` and, when it has them, from `valid_from` until `valid_until` (422
    `validation_error` when `valid_until` is not after `valid_from`).

    For `admin` keys only; honours `Idempotency-Key`. One rule per `type` (409 `activity_rule_exists`).
    Emits `activity_rule.changed`."""
    rule = await service.create_rule(
        uow,
        type=body.type,
        name=body.name,
        points=body.points,
        daily_cap=body.daily_cap,
        period_cap=body.period_cap,
        cap_period=body.cap_period,
        streak_bonuses=[bonus.bonus() for bonus in body.streak_bonuses],
        active=body.active,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
    )
    return ActivityRuleRead.model_validate(rule)


@router.get(
    "/activity-rules", summary="List activity rules", responses=problem_responses(*_AUTH, InvalidField)
)
async def list_activity_rules(uow: UoW, _: Operator, paging: Paging) -> ActivityRuleList:
    """Every activity rule, active or not, oldest first, page by page.

    For `admin` keys only. Reads only."""
    page = await service.list_rules(uow, limit=paging.limit, cursor=paging.cursor)
    return ActivityRuleList(
        items=[ActivityRuleRead.model_validate(rule) for rule in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/activity-rules/{rule_id}",
    summary="Read an activity rule",
    responses=problem_responses(*_AUTH, errors.ActivityRuleNotFound),
)
async def read_activity_rule(rule_id: uuid.UUID, uow: UoW, _: Operator) -> ActivityRuleRead:
    """One activity rule.

    For `admin` keys only. Reads only."""
    return ActivityRuleRead.model_validate(await service.get_rule(uow, rule_id))


@router.patch(
    "/activity-rules/{rule_id}",
    summary="Change or switch off an activity rule",
    responses=problem_responses(*_AUTH, errors.ActivityRuleNotFound, InvalidField),
)
async def update_activity_rule(
    rule_id: uuid.UUID, body: ActivityRuleUpdate, uow: UoW, _: Operator
) -> ActivityRuleRead:
    """Change the fields sent and leave the others; a cap, `valid_from` or `valid_until` sent as null is
    lifted; `active: false` switches the rule off (activities of its type are then refused), and so does a
    window that is over. The `type` cannot change.
    Activities already rewarded keep their points, and the caps count them.

    For `admin` keys only. PATCH does not take `Idempotency-Key`: a repeat sets the same values. Emits
    `activity_rule.changed`, unless the rule has the values sent already (a repeat changes nothing)."""
    changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
    if "streak_bonuses" in changes:
        changes["streak_bonuses"] = [bonus.bonus() for bonus in body.streak_bonuses or []]
    rule = await service.update_rule(uow, rule_id, **changes)
    return ActivityRuleRead.model_validate(rule)


@router.post(
    "/members/{member_id}/activities",
    status_code=201,
    summary="Reward a member for an activity",
    responses={
        # The replay's body is the first answer's, so it has the 201's model: without it the document gave the
        # 200 no content and generated clients could not read it.
        200: {
            "model": ActivityRead,
            "description": "This `ref` was rewarded before: its first result, and nothing earned again.",
        },
        **problem_responses(
            *_AUTH,
            MemberNotFound,
            MemberNotActive,
            errors.UnknownActivityType,
            errors.ActivityRuleInactive,
            errors.ActivityCapReached,
        ),
    },
)
async def record_activity(
    member_id: uuid.UUID, body: ActivityRequest, uow: UoW, caller: Till, response: Response
) -> ActivityRead:
    """Reward the member for a check-in, a review, a share, a completed profile, … as the activity rule of
    its `type` says: the rule's points, and a streak bonus on every n-th consecutive programme day the rule
    names, one `breakdown` line each, credited through the ledger (entry type `activity`).

    For `pos`, `ecommerce` and `admin` keys; honours `Idempotency-Key`. A `ref` is rewarded once per member
    and type: the same one again answers the first result with 200 and earns nothing, with or without a key,
    also after the member was suspended or closed meanwhile (a new `ref` is then 409 `member_not_active`).
    An activity over the rule's daily or period cap is refused and not recorded (409
    `activity_cap_reached`, with `resets_at`); a type without a rule is 422 `unknown_activity_type`, a rule
    switched off or outside its window 422 `activity_rule_inactive` (with `valid_from` or `valid_until` when
    the window is why). Emits `activity.recorded`."""
    found = await service.record_activity(
        uow, member_id=member_id, type=body.type, ref=body.ref, actor=caller.key_id
    )
    if found.already_recorded:
        response.status_code = 200
    return ActivityRead.model_validate(found)
