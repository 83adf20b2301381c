"""All queries of benefits and of who is granted them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.grants.models import Benefit, BenefitGrant


class BenefitRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_benefit(self, benefit_id: uuid.UUID) -> Benefit | None:
        return await self.session.get(Benefit, benefit_id)

    async def lock_benefit(self, benefit_id: uuid.UUID) -> Benefit | None:
        """The benefit under lock until commit (None: there is none, or a change that held it deleted it). On
        PostgreSQL a replace or delete racing another waits here for it, then reads what it left; SQLite's
        `BEGIN IMMEDIATE` has serialized them already."""
        result = await self.session.execute(
            select(Benefit)
            .where(Benefit.id == benefit_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def list_benefits(self, *, after_id: uuid.UUID | None, limit: int) -> Sequence[Benefit]:
        """Benefits by id (oldest first), those after `after_id`."""
        query = select(Benefit)
        if after_id is not None:
            query = query.where(Benefit.id > after_id)
        return (await self.session.execute(query.order_by(Benefit.id).limit(limit))).scalars().all()

    async def list_by_ids(self, benefit_ids: Iterable[uuid.UUID]) -> Sequence[Benefit]:
        result = await self.session.execute(select(Benefit).where(Benefit.id.in_(list(benefit_ids))))
        return result.scalars().all()

    async def insert_benefit(self, benefit: Benefit) -> None:
        self.session.add(benefit)
        await self.session.flush()

    async def save_benefit(self) -> None:
        await self.session.flush()

    async def delete_benefit(self, benefit_id: uuid.UUID) -> bool:
        """Delete the benefit and its grants; False when there was no benefit to delete."""
        await self.session.execute(delete(BenefitGrant).where(BenefitGrant.benefit_id == benefit_id))
        result = await self.session.execute(
            delete(Benefit).where(Benefit.id == benefit_id).returning(Benefit.id)
        )
        return result.scalar_one_or_none() is not None

    async def list_grants(
        self, sources: Sequence[tuple[str, uuid.UUID]]
    ) -> Sequence[tuple[str, uuid.UUID, Benefit]]:
        """(source type, source id, benefit) for every benefit granted to one of the sources."""
        if not sources:
            return []
        result = await self.session.execute(
            select(BenefitGrant.source_type, BenefitGrant.source_id, Benefit)
            .join(Benefit, Benefit.id == BenefitGrant.benefit_id)
            .where(tuple_(BenefitGrant.source_type, BenefitGrant.source_id).in_(sources))
            .order_by(Benefit.id)
        )
        return [(t, s, b) for t, s, b in result.all()]

    async def granted_ids(self, source_type: str, source_id: uuid.UUID) -> set[uuid.UUID]:
        """The ids of the benefits the source grants: what a replace compares its list with."""
        result = await self.session.scalars(
            select(BenefitGrant.benefit_id).where(
                BenefitGrant.source_type == source_type, BenefitGrant.source_id == source_id
            )
        )
        return set(result.all())

    async def exists_granted(self, kind: str) -> bool:
        """Whether an active benefit of this kind is granted to anything (a tier, a plan, a partner)."""
        found = await self.session.scalar(
            select(Benefit.id)
            .join(BenefitGrant, BenefitGrant.benefit_id == Benefit.id)
            .where(Benefit.kind == kind, Benefit.active.is_(True))
            .limit(1)
        )
        return found is not None

    async def list_sources_of(self, benefit_id: uuid.UUID) -> Sequence[tuple[str, uuid.UUID]]:
        result = await self.session.execute(
            select(BenefitGrant.source_type, BenefitGrant.source_id).where(
                BenefitGrant.benefit_id == benefit_id
            )
        )
        return [(t, s) for t, s in result.all()]

    async def replace_grants(
        self, source_type: str, source_id: uuid.UUID, benefit_ids: Sequence[uuid.UUID]
    ) -> None:
        await self.session.execute(
            delete(BenefitGrant).where(
                BenefitGrant.source_type == source_type, BenefitGrant.source_id == source_id
            )
        )
        for benefit_id in dict.fromkeys(benefit_ids):
            self.session.add(
                BenefitGrant(source_type=source_type, source_id=source_id, benefit_id=benefit_id)
            )
        await self.session.flush()
