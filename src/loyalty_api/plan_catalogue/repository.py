"""All queries of the plans on record."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.db.constraints import flush_unique
from loyalty_api.plan_catalogue.models import Plan


class PlanRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_plans(self) -> Sequence[Plan]:
        return (await self.session.scalars(select(Plan).order_by(Plan.code))).all()

    async def get_by_code(self, code: str) -> Plan | None:
        return await self.session.scalar(select(Plan).where(Plan.code == code))

    async def lock_by_code(self, code: str, *, to_change: bool = False) -> Plan | None:
        """The plan under lock until commit (PostgreSQL): FOR UPDATE to replace or delete it, else FOR KEY
        SHARE to sell it, so a change and a subscribe never cross, nor two changes (the one that comes second
        sees the first's work: a plan deleted meanwhile is None)."""
        query = select(Plan).where(Plan.code == code)
        locked = query.with_for_update() if to_change else query.with_for_update(read=True, key_share=True)
        return await self.session.scalar(locked.execution_options(populate_existing=True))

    async def insert_plan(self, plan: Plan) -> None:
        self.session.add(plan)
        await flush_unique(self.session)

    async def save_plan(self) -> None:
        await self.session.flush()

    async def delete_plan(self, plan_id: uuid.UUID) -> bool:
        """False when there was no plan to delete."""
        result = await self.session.execute(delete(Plan).where(Plan.id == plan_id).returning(Plan.id))
        return result.scalar_one_or_none() is not None
