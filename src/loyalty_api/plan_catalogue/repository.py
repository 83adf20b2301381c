"""All queries of the plans on record."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal

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

    async def lock_by_code(self, code: str, *, to: Literal["sell", "replace", "delete"]) -> Plan | None:
        """The plan under lock until commit (PostgreSQL), so two changes never cross (the one that comes
        second sees the first's work: a plan deleted meanwhile is None). A delete takes FOR UPDATE: no
        subscription may be sold it meanwhile. A sale takes FOR KEY SHARE, as a subscription's foreign key
        does. A replace takes FOR NO KEY UPDATE, which a key share does not wait for: a payment or a plan
        change locks its subscription first and then the plan's key, while a replace's renotice waits for
        subscriptions, so a stronger lock deadlocked the two."""
        query = select(Plan).where(Plan.code == code)
        if to == "delete":
            query = query.with_for_update()
        elif to == "replace":
            query = query.with_for_update(key_share=True)
        else:
            query = query.with_for_update(read=True, key_share=True)
        return await self.session.scalar(query.execution_options(populate_existing=True))

    async def insert_plan(self, plan: Plan) -> None:
        self.session.add(plan)
        await flush_unique(self.session)

    async def save_plan(self) -> None:
        await self.session.flush()

    async def delete_plan(self, plan_id: uuid.UUID) -> bool:
        """False when there was no plan to delete."""
        result = await self.session.execute(delete(Plan).where(Plan.id == plan_id).returning(Plan.id))
        return result.scalar_one_or_none() is not None
