from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.earning.models import EarningRule


class EarningRuleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_rule(self, rule_id: uuid.UUID) -> EarningRule | None:
        return await self.session.get(EarningRule, rule_id)

    async def lock_rule(self, rule_id: uuid.UUID) -> EarningRule | None:
        """The rule under lock until commit (None: there is none, or a change that held it deleted it). On
        PostgreSQL a replace or delete racing another waits here for it, then reads what it left; SQLite's
        `BEGIN IMMEDIATE` has serialized them already."""
        result = await self.session.execute(
            select(EarningRule)
            .where(EarningRule.id == rule_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def list_rules(self, *, after: tuple[int, uuid.UUID] | None, limit: int) -> Sequence[EarningRule]:
        """Rules by priority, highest first, then by id; those after `after` (priority, id)."""
        query = select(EarningRule)
        if after is not None:
            priority, rule_id = after
            query = query.where(
                or_(
                    EarningRule.priority < priority,
                    and_(EarningRule.priority == priority, EarningRule.id > rule_id),
                )
            )
        result = await self.session.execute(
            query.order_by(EarningRule.priority.desc(), EarningRule.id).limit(limit)
        )
        return result.scalars().all()

    async def list_active_rules(self) -> Sequence[EarningRule]:
        result = await self.session.execute(select(EarningRule).where(EarningRule.active.is_(True)))
        return result.scalars().all()

    async def insert_rule(self, rule: EarningRule) -> None:
        self.session.add(rule)
        await self.session.flush()

    async def save_rule(self) -> None:
        await self.session.flush()

    async def delete_rule(self, rule_id: uuid.UUID) -> bool:
        result = await self.session.execute(
            delete(EarningRule).where(EarningRule.id == rule_id).returning(EarningRule.id)
        )
        return result.scalar_one_or_none() is not None
