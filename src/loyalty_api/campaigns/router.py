"""/v1/campaigns (admin): make a campaign, follow its progress, list the members it reached."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.campaigns import errors, service
from loyalty_api.campaigns.schemas import (
    CampaignCreate,
    CampaignList,
    CampaignMemberList,
    CampaignMemberRead,
    CampaignRead,
    IssueCouponWrite,
)
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import Paging, UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.transaction import UnitOfWorkRoute

router = APIRouter(prefix="/v1", tags=["campaigns"], route_class=UnitOfWorkRoute)
Operator = Annotated[Principal, Depends(require(Scope.admin))]
_AUTH = (InvalidApiKey, ScopeNotAllowed)


@router.post(
    "/campaigns",
    status_code=201,
    summary="Create a campaign",
    responses=problem_responses(*_AUTH, errors.CampaignTierUnknown, errors.CampaignPlanUnknown, InvalidField),
)
async def create_campaign(body: CampaignCreate, uow: UoW, caller: Operator) -> CampaignRead:
    """Give every active member of an `audience` (on a `tier`, subscribed to a paid `plan`, in a `lifecycle`
    stage, in an RFM `segment`, born in a `birthday_month`: every filter given must hold) one `action`:
    a coupon (`issue_coupon`) or points (`grant_points`, with a `reason`). The worker runs it in batches
    within seconds, each member once, surviving restarts; follow it with `GET /v1/campaigns/{id}`.

    For `admin` keys only; honours `Idempotency-Key`. A `tier` or `plan` code that does not exist is refused
    (422 `campaign_tier_unknown`, `campaign_plan_unknown`) and nothing is made. Emits `campaign.created`, then
    `coupon.issued` or `campaign.points_granted` for each member reached, and `campaign.completed`."""
    audience = body.audience
    action: service.Action
    if isinstance(body.action, IssueCouponWrite):
        action = service.CouponAction(
            coupon_name=body.action.coupon_name, coupon=body.action.coupon, valid_days=body.action.valid_days
        )
    else:
        action = service.PointsAction(points=body.action.points, reason=body.action.reason)
    campaign = await service.create_campaign(
        uow,
        name=body.name,
        tier=audience.tier,
        plan=audience.plan,
        lifecycle=audience.lifecycle,
        segment=audience.segment,
        birthday_month=audience.birthday_month,
        action=action,
        actor=caller.key_id,
    )
    return CampaignRead.model_validate(campaign)


@router.get("/campaigns", summary="List campaigns", responses=problem_responses(*_AUTH, InvalidField))
async def list_campaigns(uow: UoW, _: Operator, paging: Paging) -> CampaignList:
    """Every campaign, oldest first, page by page, each with its status and counts.

    For `admin` keys only. Reads only."""
    page = await service.list_campaigns(uow, limit=paging.limit, cursor=paging.cursor)
    return CampaignList(
        items=[CampaignRead.model_validate(c) for c in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/campaigns/{campaign_id}",
    summary="Read a campaign's progress",
    responses=problem_responses(*_AUTH, errors.CampaignNotFound),
)
async def read_campaign(campaign_id: uuid.UUID, uow: UoW, _: Operator) -> CampaignRead:
    """The campaign: `status` (`pending` until the worker starts it, `running`, `completed`), the members
    reached so far, what they were given, and how many of them bought since it reached them.

    For `admin` keys only. Reads only."""
    return CampaignRead.model_validate(await service.get_campaign(uow, campaign_id))


@router.get(
    "/campaigns/{campaign_id}/members",
    summary="List the members a campaign reached",
    responses=problem_responses(*_AUTH, errors.CampaignNotFound, InvalidField),
)
async def list_campaign_members(
    campaign_id: uuid.UUID, uow: UoW, _: Operator, paging: Paging
) -> CampaignMemberList:
    """The members the campaign reached so far, in member id order, page by page: when, what they were
    given, and whether they bought since. A member erased since is not listed (the counts keep them).

    For `admin` keys only. Reads only."""
    page = await service.list_reached(uow, campaign_id, limit=paging.limit, cursor=paging.cursor)
    return CampaignMemberList(
        items=[CampaignMemberRead.model_validate(m) for m in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/campaigns/{campaign_id}/cancel",
    summary="Cancel a campaign",
    responses=problem_responses(*_AUTH, errors.CampaignNotFound, errors.CampaignFinished),
)
async def cancel_campaign(campaign_id: uuid.UUID, uow: UoW, _: Operator) -> CampaignRead:
    """Stop a `pending` or `running` campaign: a batch under way finishes, then nobody more is reached;
    the members reached keep what they were given. Cancelling a cancelled campaign answers it as it is; a
    `completed` one is refused (409 `campaign_finished`) and nothing changes.

    For `admin` keys only; honours `Idempotency-Key`. Emits `campaign.cancelled`."""
    return CampaignRead.model_validate(await service.cancel_campaign(uow, campaign_id))
