"""All queries of the rewards catalogue and its redemptions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.rewards.models import Reward, RewardRedemption


def _on_offer(now: datetime) -> ColumnElement[bool]:
    return and_(
        Reward.active.is_(True),
        or_(Reward.valid_from.is_(None), Reward.valid_from <= now),
        or_(Reward.valid_until.is_(None), Reward.valid_until > now),
    )


class RewardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_reward(self, reward_id: uuid.UUID) -> Reward | None:
        return await self.session.get(Reward, reward_id, populate_existing=True)

    async def lock_reward(self, reward_id: uuid.UUID) -> Reward | None:
        """The reward under lock until commit, to be replaced or redeemed (None: there is none). On
        PostgreSQL a replace or a redemption racing a replace waits here for it, then reads what it left;
        SQLite's `BEGIN IMMEDIATE` has serialized them already. FOR NO KEY UPDATE, as a tier's or plan's
        replace: the key never changes, so a redemption's row, whose foreign key takes a key share, need not
        wait for it."""
        result = await self.session.execute(
            select(Reward)
            .where(Reward.id == reward_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def list_rewards(
        self, *, on_offer_at: datetime | None, after_id: uuid.UUID | None, limit: int
    ) -> Sequence[Reward]:
        """Rewards in the order they were created; with `on_offer_at`, only those offered then."""
        query = select(Reward)
        if on_offer_at is not None:
            query = query.where(_on_offer(on_offer_at))
        if after_id is not None:
            query = query.where(Reward.id > after_id)
        result = await self.session.execute(query.order_by(Reward.id).limit(limit))
        return result.scalars().all()

    async def insert_reward(self, reward: Reward) -> None:
        self.session.add(reward)
        await self.session.flush()

    async def save_reward(self) -> None:
        await self.session.flush()

    async def take_stock(self, reward_id: uuid.UUID, now: datetime) -> tuple[bool, int | None]:
        """Take one off the stock in one statement, only if the reward is offered now and has stock left
        (or unlimited stock). Returns (taken, stock left). On PostgreSQL the row stays locked until commit,
        so concurrent redemptions queue here and each sees the stock the one before left."""
        result = await self.session.execute(
            update(Reward)
            .where(
                Reward.id == reward_id,
                _on_offer(now),
                or_(Reward.stock_left.is_(None), Reward.stock_left > 0),
            )
            .values(stock_left=Reward.stock_left - 1)  # NULL (unlimited) stays NULL
            .returning(Reward.id, Reward.stock_left)
            .execution_options(synchronize_session=False)
        )
        row = result.one_or_none()
        return (False, None) if row is None else (True, row[1])


class RedemptionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def count_member_redemptions(self, member_id: uuid.UUID, reward_id: uuid.UUID) -> int:
        found = await self.session.scalar(
            select(func.count())
            .select_from(RewardRedemption)
            .where(RewardRedemption.member_id == member_id, RewardRedemption.reward_id == reward_id)
        )
        return int(found or 0)

    async def redemptions_of(
        self, member_id: uuid.UUID, *, after_id: uuid.UUID | None, limit: int
    ) -> Sequence[tuple[RewardRedemption, str]]:
        """The member's redemptions after `after_id`, oldest first, each with its reward's name now."""
        query = (
            select(RewardRedemption, Reward.name)
            .join(Reward, Reward.id == RewardRedemption.reward_id)
            .where(RewardRedemption.member_id == member_id)
        )
        if after_id is not None:
            query = query.where(RewardRedemption.id > after_id)
        rows = await self.session.execute(query.order_by(RewardRedemption.id).limit(limit))
        return [(redemption, name) for redemption, name in rows.all()]

    async def insert_redemption(self, redemption: RewardRedemption) -> None:
        self.session.add(redemption)
        await self.session.flush()
