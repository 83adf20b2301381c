"""All queries of campaigns: the campaigns, the members they reached, and their audience."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, exists, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.campaigns.audience import Audience
from loyalty_api.campaigns.models import Campaign, CampaignMember
from loyalty_api.db.dialect import dialect_insert
from loyalty_api.members.models import Member, not_erased
from loyalty_api.members.repository import narrow_members
from loyalty_api.orders.models import Order
from loyalty_api.plan_catalogue.models import Plan
from loyalty_api.subscriptions.models import Subscription
from loyalty_api.tiers.models import Tier

_CAMPAIGNS = cast(Table, Campaign.__table__)
_REACHED = cast(Table, CampaignMember.__table__)
_MEMBERS = cast(Table, Member.__table__)
_ORDERS = cast(Table, Order.__table__)
_SUBSCRIPTIONS = cast(Table, Subscription.__table__)
RUNNABLE = ("pending", "running")


def _purchased_since() -> Any:
    """The reached member has bought since the campaign reached them: an order they earned for, made at or
    after it. Made when the purchase was (`purchased_at`), not when its earn came: a till offline while the
    campaign ran sends its receipts later with the time each was made, and one made before the campaign is
    no purchase it brought. A purchase at a partner keeps no time of its own (it counts for no tier): it was
    made when it earned."""
    made = func.coalesce(_ORDERS.c.purchased_at, _ORDERS.c.earned_at)
    return exists().where(
        _ORDERS.c.member_id == _REACHED.c.member_id,
        _ORDERS.c.earned_at.is_not(None),
        made >= _REACHED.c.reached_at,
    )


@dataclass(frozen=True, slots=True)
class ReachedMember:
    member_id: uuid.UUID
    outcome: str
    reached_at: datetime
    purchased_since: bool


class CampaignRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_campaign(self, campaign: Campaign) -> None:
        self.session.add(campaign)
        await self.session.flush()

    async def get_campaign(self, campaign_id: uuid.UUID) -> Campaign | None:
        return await self.session.get(Campaign, campaign_id)

    async def list_campaigns(self, *, after: uuid.UUID | None, limit: int) -> Sequence[Campaign]:
        """Campaigns in the order they were made (ids are time-ordered), those after `after`."""
        query = select(Campaign)
        if after is not None:
            query = query.where(Campaign.id > after)
        return (await self.session.scalars(query.order_by(Campaign.id).limit(limit))).all()

    async def lock_campaign(self, campaign_id: uuid.UUID) -> Campaign | None:
        """The campaign, locked until commit: behind a batch that is running, never beside it."""
        query = (
            select(Campaign)
            .where(Campaign.id == campaign_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(query)).one_or_none()

    async def lock_next_runnable(self) -> Campaign | None:
        """The oldest campaign still to run, locked until commit; one another worker holds is skipped (on
        SQLite, where FOR UPDATE is not spelt, the write transaction itself keeps others out)."""
        query = (
            select(Campaign)
            .where(Campaign.status.in_(RUNNABLE))
            .order_by(Campaign.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(query)).one_or_none()

    async def save_campaign(self) -> None:
        await self.session.flush()

    async def get_tier_id(self, code: str) -> uuid.UUID | None:
        return await self.session.scalar(select(Tier.id).where(Tier.code == code))

    async def get_plan_id(self, code: str) -> uuid.UUID | None:
        return await self.session.scalar(select(Plan.id).where(Plan.code == code))

    async def get_codes(
        self, tier_id: uuid.UUID | None, plan_id: uuid.UUID | None
    ) -> tuple[str | None, str | None]:
        """The codes of the tier and the plan (None for none given, or one deleted since)."""
        tier = (
            None
            if tier_id is None
            else await self.session.scalar(select(Tier.code).where(Tier.id == tier_id))
        )
        plan = (
            None
            if plan_id is None
            else await self.session.scalar(select(Plan.code).where(Plan.id == plan_id))
        )
        return tier, plan

    async def lock_audience_next(
        self,
        audience: Audience,
        *,
        birthday_month_key: str | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[uuid.UUID]:
        """The next `limit` active members of the audience after member `after`, in id order, their rows
        shared until commit. PostgreSQL waits for a change of the member under way (a suspension, a close,
        an erasure) and judges the committed row again, so one no longer active by then is skipped and the
        next one taken instead; without the lock the batch would act on what it read before that change."""
        query = narrow_members(
            select(_MEMBERS.c.id).where(
                _MEMBERS.c.status == "active", _MEMBERS.c.id > after if after is not None else true()
            ),
            tier_id=audience.tier_id,
            lifecycle=audience.lifecycle,
            segment=audience.segment,
            birthday_month_key=birthday_month_key,
        )
        if audience.plan_id is not None:
            query = query.where(
                exists().where(
                    _SUBSCRIPTIONS.c.member_id == _MEMBERS.c.id,
                    _SUBSCRIPTIONS.c.plan_id == audience.plan_id,
                    _SUBSCRIPTIONS.c.state == "active",
                )
            )
        query = query.order_by(_MEMBERS.c.id).limit(limit).with_for_update(read=True, of=_MEMBERS)
        return list((await self.session.scalars(query)).all())

    async def insert_reached(
        self, campaign_id: uuid.UUID, member_ids: Sequence[uuid.UUID], *, outcome: str, now: datetime
    ) -> list[uuid.UUID]:
        """Record `member_ids` as reached by the campaign; the ids recorded. A member recorded before is left
        out (ON CONFLICT DO NOTHING), though under the campaign's lock the cursor never goes back to one."""
        if not member_ids:
            return []
        statement = (
            dialect_insert(self.session, _REACHED)
            .values(
                [
                    {"campaign_id": campaign_id, "member_id": m, "outcome": outcome, "reached_at": now}
                    for m in member_ids
                ]
            )
            .on_conflict_do_nothing()
            .returning(_REACHED.c.member_id)
        )
        return list((await self.session.scalars(statement)).all())

    async def list_reached(
        self, campaign_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
    ) -> list[ReachedMember]:
        """The members the campaign reached, in member id order, after `after`; whether each bought since.
        An erased member is not listed, as no list shows them (the campaign's counts keep them, as the
        analytics do)."""
        query = (
            select(
                _REACHED.c.member_id,
                _REACHED.c.outcome,
                _REACHED.c.reached_at,
                _purchased_since().label("bought"),
            )
            .join(_MEMBERS, _MEMBERS.c.id == _REACHED.c.member_id)
            .where(_REACHED.c.campaign_id == campaign_id, not_erased())
        )
        if after is not None:
            query = query.where(_REACHED.c.member_id > after)
        rows = await self.session.execute(query.order_by(_REACHED.c.member_id).limit(limit))
        return [ReachedMember(m, outcome, at, bool(bought)) for m, outcome, at, bought in rows.all()]

    async def list_campaigns_reaching(
        self, member_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
    ) -> list[tuple[uuid.UUID, str, str, datetime]]:
        """The campaigns that reached the member (id, name, outcome, when), by campaign id after `after`."""
        query = (
            select(Campaign.id, Campaign.name, _REACHED.c.outcome, _REACHED.c.reached_at)
            .join(_REACHED, _REACHED.c.campaign_id == Campaign.id)
            .where(_REACHED.c.member_id == member_id)
        )
        if after is not None:
            query = query.where(Campaign.id > after)
        rows = await self.session.execute(query.order_by(Campaign.id).limit(limit))
        return [(row[0], row[1], row[2], row[3]) for row in rows.all()]

    async def count_purchased_since(self, campaign_id: uuid.UUID) -> int:
        """How many of the members the campaign reached bought after it reached them, in one statement."""
        return int(
            await self.session.scalar(
                select(func.count()).where(and_(_REACHED.c.campaign_id == campaign_id, _purchased_since()))
            )
            or 0
        )
