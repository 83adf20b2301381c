from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.points.models import PointsAccount


class PointsAccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_account(self, member_id: uuid.UUID, now: datetime) -> None:
        self.session.add(
            PointsAccount(member_id=member_id, balance=0, held=0, lifetime_earned=0, updated_at=now)
        )
        await self.session.flush()
