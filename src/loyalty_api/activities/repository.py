from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.activities.models import ActivityRule, MemberActivity
from loyalty_api.db.constraints import flush_unique


class ActivityRuleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_rule(self, rule_id: uuid.UUID) -> ActivityRule | None:
        return await self.session.get(ActivityRule, rule_id)

    async def lock_rule(self, rule_id: uuid.UUID) -> ActivityRule | None:
        """The rule under lock until commit, read afresh: two changes at once take turns, the second checking
        its fields against what the first left (SQLite's `BEGIN IMMEDIATE` has serialized them already)."""
        result = await self.session.execute(
            select(ActivityRule)
            .where(ActivityRule.id == rule_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def get_rule_by_type(self, type: str) -> ActivityRule | None:
        return await self.session.scalar(select(ActivityRule).where(ActivityRule.type == type))

    async def exists_type(self, type: str, *, other_than: uuid.UUID | None = None) -> bool:
        query = select(ActivityRule.id).where(ActivityRule.type == type)
        if other_than is not None:
            query = query.where(ActivityRule.id != other_than)
        return await self.session.scalar(query.limit(1)) is not None

    async def list_rules(self, *, after: uuid.UUID | None, limit: int) -> Sequence[ActivityRule]:
        """Rules in the order they were made (ids are time-ordered), those after `after`."""
        query = select(ActivityRule)
        if after is not None:
            query = query.where(ActivityRule.id > after)
        return (await self.session.scalars(query.order_by(ActivityRule.id).limit(limit))).all()

    async def insert_rule(self, rule: ActivityRule) -> None:
        """Add the rule; DuplicateKey when another rule has its type."""
        self.session.add(rule)
        await flush_unique(self.session)

    async def save_rule(self) -> None:
        await flush_unique(self.session)


class MemberActivityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_activity(self, member_id: uuid.UUID, type: str, ref: str) -> MemberActivity | None:
        return await self.session.scalar(
            select(MemberActivity).where(
                MemberActivity.member_id == member_id, MemberActivity.type == type, MemberActivity.ref == ref
            )
        )

    async def get_latest(self, member_id: uuid.UUID, type: str, *, up_to: date) -> tuple[date, int] | None:
        """The day and streak of the member's latest activity of `type` on or before `up_to`."""
        row = (
            await self.session.execute(
                select(MemberActivity.day, MemberActivity.streak)
                .where(
                    MemberActivity.member_id == member_id,
                    MemberActivity.type == type,
                    MemberActivity.day <= up_to,
                )
                .order_by(MemberActivity.day.desc(), MemberActivity.streak.desc())
                .limit(1)
            )
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    async def count_activities(self, member_id: uuid.UUID, type: str, *, since: date | None) -> int:
        """The member's rewarded activities of `type` on or after the programme day `since` (None: ever)."""
        query = select(func.count()).where(MemberActivity.member_id == member_id, MemberActivity.type == type)
        if since is not None:
            query = query.where(MemberActivity.day >= since)
        return int(await self.session.scalar(query) or 0)

    async def list_member_activities(
        self, member_id: uuid.UUID, *, after_id: uuid.UUID | None, limit: int
    ) -> Sequence[MemberActivity]:
        """The member's activities after `after_id`, oldest first."""
        query = select(MemberActivity).where(MemberActivity.member_id == member_id)
        if after_id is not None:
            query = query.where(MemberActivity.id > after_id)
        result = await self.session.execute(query.order_by(MemberActivity.id).limit(limit))
        return result.scalars().all()

    async def insert_activity(self, activity: MemberActivity) -> None:
        self.session.add(activity)
        await self.session.flush()
