"""Campaigns: one action, a coupon or points, for every active member of an audience (a tier, a paid plan,
a lifecycle stage, an RFM segment, a birthday month), run by the worker a batch at a time.

Each batch is one transaction: it locks the campaign's row (others' workers skip it), records the next
members of the audience after the campaign's cursor in campaign_members (primary key campaign and member),
their rows shared so that one suspended, closed or erased meanwhile is judged as that change committed,
gives those members the action set-based (one statement for the coupons, a few for the points), and moves
the cursor past them. A crash rolls the whole batch back; the next run starts from the cursor as it was
committed, so nobody is reached twice and nobody is skipped. The audience is read afresh at each batch:
a member who leaves it before their batch is not reached, one who joins it ahead of the cursor is.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from loyalty_api.calendar_days import add_days
from loyalty_api.campaigns.audience import Audience
from loyalty_api.campaigns.errors import (
    CampaignFinished,
    CampaignNotFound,
    CampaignPlanUnknown,
    CampaignTierUnknown,
)
from loyalty_api.campaigns.events import (
    CampaignCancelled,
    CampaignCompleted,
    CampaignCreated,
    CampaignPointsGranted,
)
from loyalty_api.campaigns.models import Campaign
from loyalty_api.campaigns.repository import CampaignRepository, ReachedMember
from loyalty_api.coupons.service import issue_coupons
from loyalty_api.db.pagination import Page, decode_cursor, page_of, scope_of
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.offers import COUPON_OFFER_ADAPTER, CartConditions
from loyalty_api.outbox.service import emit, emit_for_members
from loyalty_api.points.accounts import credit_members
from loyalty_api.program.service import get_program

CAMPAIGNS = scope_of("campaigns")  # the campaign list's cursors carry it

Status = Literal["pending", "running", "completed", "cancelled"]
# Members a batch reaches: large enough that a million members take a thousand transactions, small enough
# that one batch's locks (its members' accounts, for points) are held for well under a second.
BATCH = 1_000


@dataclass(frozen=True, slots=True)
class CouponAction:
    coupon_name: str
    coupon: CartConditions  # a CouponOffer kind
    valid_days: int
    type: Literal["issue_coupon"] = "issue_coupon"


@dataclass(frozen=True, slots=True)
class PointsAction:
    points: int
    reason: str
    type: Literal["grant_points"] = "grant_points"


Action = CouponAction | PointsAction


@dataclass(frozen=True, slots=True)
class AudienceView:
    tier: str | None
    plan: str | None
    lifecycle: str | None
    segment: str | None
    birthday_month: int | None


@dataclass(frozen=True, slots=True)
class CampaignCounts:
    reached: int
    coupons_issued: int
    points_granted: int
    purchased_since: int


@dataclass(frozen=True, slots=True)
class CampaignView:
    id: uuid.UUID
    name: str
    status: str
    audience: AudienceView
    action: Action
    counts: CampaignCounts
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _action(row: Campaign) -> Action:
    if row.action == "grant_points":
        assert row.points is not None and row.reason is not None
        return PointsAction(points=row.points, reason=row.reason)
    assert row.coupon_name is not None and row.coupon_kind is not None and row.coupon_valid_days is not None
    offer = COUPON_OFFER_ADAPTER.validate_python({**(row.coupon_properties or {}), "kind": row.coupon_kind})
    return CouponAction(coupon_name=row.coupon_name, coupon=offer, valid_days=row.coupon_valid_days)


def _audience(row: Campaign) -> Audience:
    return Audience(
        tier_id=row.tier_id,
        plan_id=row.plan_id,
        lifecycle=row.lifecycle,
        segment=row.segment,
        birthday_month=row.birthday_month,
    )


async def _view(uow: UnitOfWork, row: Campaign, *, purchased_since: int | None = None) -> CampaignView:
    repo = CampaignRepository(uow.session)
    tier, plan = await repo.get_codes(row.tier_id, row.plan_id)
    if purchased_since is None:
        purchased_since = await repo.count_purchased_since(row.id)
    return CampaignView(
        id=row.id,
        name=row.name,
        status=row.status,
        audience=AudienceView(
            tier=tier,
            plan=plan,
            lifecycle=row.lifecycle,
            segment=row.segment,
            birthday_month=row.birthday_month,
        ),
        action=_action(row),
        counts=CampaignCounts(
            reached=row.reached,
            coupons_issued=row.coupons_issued,
            points_granted=row.points_granted,
            purchased_since=purchased_since,
        ),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


async def create_campaign(
    uow: UnitOfWork,
    *,
    name: str,
    tier: str | None = None,
    plan: str | None = None,
    lifecycle: str | None = None,
    segment: str | None = None,
    birthday_month: int | None = None,
    action: Action,
    actor: uuid.UUID | None = None,
) -> CampaignView:
    """Make a campaign (status `pending`); the worker runs it. A tier or plan code no tier or plan has is
    refused, and nothing is written."""
    if birthday_month is not None and not 1 <= birthday_month <= 12:
        raise ValueError("birthday_month is 1 to 12")
    repo = CampaignRepository(uow.session)
    tier_id = plan_id = None
    if tier is not None:
        tier_id = await repo.get_tier_id(tier)
        if tier_id is None:
            raise CampaignTierUnknown(f"No tier has the code {tier!r}")
    if plan is not None:
        plan_id = await repo.get_plan_id(plan)
        if plan_id is None:
            raise CampaignPlanUnknown(f"No plan has the code {plan!r}")
    now = uow.clock.now()
    values: dict[str, Any] = {}
    if isinstance(action, PointsAction):
        if action.points <= 0:
            raise ValueError("a campaign grants a positive number of points")
        values = {"points": action.points, "reason": action.reason}
    else:
        offer = COUPON_OFFER_ADAPTER.validate_python(action.coupon.model_dump())
        values = {
            "coupon_name": action.coupon_name,
            "coupon_kind": offer.kind,
            "coupon_properties": offer.model_dump(mode="json", exclude={"kind"}),
            "coupon_valid_days": action.valid_days,
        }
    row = Campaign(
        name=name,
        status="pending",
        tier_id=tier_id,
        plan_id=plan_id,
        lifecycle=lifecycle,
        segment=segment,
        birthday_month=birthday_month,
        action=action.type,
        cursor=None,
        reached=0,
        coupons_issued=0,
        points_granted=0,
        actor_key_id=actor,
        created_at=now,
        started_at=None,
        finished_at=None,
        updated_at=now,
        **values,
    )
    await repo.insert_campaign(row)
    await emit(
        uow,
        CampaignCreated(campaign_id=row.id, name=row.name, action=row.action),
        aggregate_type="campaign",
        aggregate_id=str(row.id),
        member_id=None,
    )
    return await _view(uow, row, purchased_since=0)


async def get_campaign(uow: UnitOfWork, campaign_id: uuid.UUID) -> CampaignView:
    row = await CampaignRepository(uow.session).get_campaign(campaign_id)
    if row is None:
        raise CampaignNotFound()
    return await _view(uow, row)


async def cancel_campaign(uow: UnitOfWork, campaign_id: uuid.UUID) -> CampaignView:
    """Stop the campaign: no batch runs after this one commits. A batch under way finishes first (the
    campaign's row is locked while it runs), and the members reached keep what they were given. Cancelling
    a cancelled campaign answers it as it is; a completed one is CampaignFinished."""
    repo = CampaignRepository(uow.session)
    row = await repo.lock_campaign(campaign_id)
    if row is None:
        raise CampaignNotFound()
    if row.status == "completed":
        raise CampaignFinished()
    if row.status != "cancelled":
        now = uow.clock.now()
        row.status = "cancelled"
        row.finished_at = now
        row.updated_at = now
        await repo.save_campaign()
        await emit(
            uow,
            CampaignCancelled(campaign_id=row.id, name=row.name, reached=row.reached),
            aggregate_type="campaign",
            aggregate_id=str(row.id),
            member_id=None,
        )
    return await _view(uow, row)


async def list_campaigns(uow: UnitOfWork, *, limit: int, cursor: str | None) -> Page[CampaignView]:
    """Every campaign, oldest first, a page at a time (each with its counts)."""
    rows = await CampaignRepository(uow.session).list_campaigns(
        after=decode_cursor(cursor, CAMPAIGNS), limit=limit + 1
    )
    page = page_of(rows, limit, lambda row: row.id, CAMPAIGNS)
    return page.with_items([await _view(uow, row) for row in page.items])


async def list_reached(
    uow: UnitOfWork, campaign_id: uuid.UUID, *, limit: int, cursor: str | None
) -> Page[ReachedMember]:
    """The members the campaign reached so far, in member id order, and whether each bought since."""
    repo = CampaignRepository(uow.session)
    if await repo.get_campaign(campaign_id) is None:
        raise CampaignNotFound()
    scope = scope_of("reached", campaign_id)
    rows = await repo.list_reached(campaign_id, after=decode_cursor(cursor, scope), limit=limit + 1)
    return page_of(rows, limit, lambda row: row.member_id, scope)


async def run_batch(uow: UnitOfWork, *, batch: int = BATCH) -> int | None:
    """One batch of the oldest campaign still to run: its next `batch` members reached and given the
    action, the cursor moved past them, the campaign completed when its audience ran out. How many members
    it reached; None when no campaign was left to run (or the one left is another worker's right now)."""
    repo = CampaignRepository(uow.session)
    campaign = await repo.lock_next_runnable()
    if campaign is None:
        return None
    action = _action(campaign)
    outcome = "coupon_issued" if isinstance(action, CouponAction) else "points_granted"
    audience = _audience(campaign)
    candidates = await repo.lock_audience_next(
        audience,
        birthday_month_key=audience.birthday_month_key(uow.vault),
        after=campaign.cursor,
        limit=batch,
    )
    # Read once the batch's members are shared with it: a purchase that held one of them meanwhile has
    # committed before it, stamped earlier, and is not counted as bought since the campaign reached them.
    now = uow.clock.now()
    reached = sorted(await repo.insert_reached(campaign.id, candidates, outcome=outcome, now=now))
    if isinstance(action, CouponAction):
        campaign.coupons_issued += await issue_coupons(
            uow,
            member_ids=reached,
            name=action.coupon_name,
            offer=action.coupon,
            valid_from=now,
            # Days of the programme's calendar: valid to the same time there that many days on.
            valid_until=add_days(now, action.valid_days, (await get_program(uow)).zone),
            source_type="campaign",
            source_id=campaign.id,
        )
    elif reached:
        campaign.points_granted += await _grant_points(uow, campaign, action, reached)
    if campaign.started_at is None:
        campaign.started_at = now
    campaign.reached += len(reached)
    if candidates:
        campaign.cursor = candidates[-1]
    # Read again after the action: a grant is stamped behind its members' account locks, which it may have
    # waited for, so the batch's start could come before its own entries. A client reading the ledger since
    # `finished_at` must find no grant of the campaign there.
    done = uow.clock.now()
    campaign.updated_at = done
    # Judged by the candidates, not by those recorded: one recorded before drops out of a full batch.
    if len(candidates) < batch:
        campaign.status = "completed"
        campaign.finished_at = done
        await emit(
            uow,
            CampaignCompleted(
                campaign_id=campaign.id,
                name=campaign.name,
                reached=campaign.reached,
                coupons_issued=campaign.coupons_issued,
                points_granted=campaign.points_granted,
                finished_at=done,
            ),
            aggregate_type="campaign",
            aggregate_id=str(campaign.id),
            member_id=None,
        )
    else:
        campaign.status = "running"
    await repo.save_campaign()
    return len(reached)


async def _grant_points(
    uow: UnitOfWork, campaign: Campaign, action: PointsAction, members: list[uuid.UUID]
) -> int:
    """The campaign's points for each of `members`, through the ledger (entry type `campaign`, a lot that
    expires as the programme says, the balance after it); the points granted in all."""
    program = await get_program(uow)
    credited = await credit_members(
        uow,
        program,
        member_ids=members,
        type="campaign",
        points=action.points,
        details={"campaign_id": str(campaign.id), "reason": action.reason},
        lifetime=True,
        actor=campaign.actor_key_id,
    )
    await emit_for_members(
        uow,
        [
            (
                CampaignPointsGranted(
                    member_id=member_id,
                    campaign_id=campaign.id,
                    points=action.points,
                    reason=action.reason,
                    balance=state.balance,
                ),
                member_id,
            )
            for member_id, (state, _) in credited.items()
        ],
    )
    return action.points * len(credited)


async def run_campaigns(units: UnitsOfWork, *, batch: int = BATCH, max_batches: int | None = None) -> int:
    """The worker's job: batches of the campaigns to run, oldest campaign first, each batch in its own
    transaction, until none is left (or `max_batches` ran). Safe to run twice at once, or to stop at any
    point: see the module's docstring. How many members were reached."""
    reached = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        async with units.begin() as uow:
            done = await run_batch(uow, batch=batch)
        if done is None:
            return reached
        reached += done
        batches += 1
    return reached
