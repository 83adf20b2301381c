"""The checkout quote's own query: the member's standing and what they may pay with, in one statement,
read without locking anything."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.db.direct import DirectStatement
from loyalty_api.members.models import Member, not_erased
from loyalty_api.points.models import PointsAccount

# A plain SELECT: no FOR UPDATE, so a quote never waits for, nor holds up, an earn or a redeem.
_PAYER = DirectStatement(
    select(
        Member.status, Member.tier_id, Member.plan_benefits_until, PointsAccount.balance - PointsAccount.held
    )
    .join(PointsAccount, PointsAccount.member_id == Member.id)
    .where(Member.id == bindparam("member_id"), not_erased())
)


@dataclass(frozen=True, slots=True)
class Payer:
    status: str
    tier_id: uuid.UUID | None
    plan_benefits_until: datetime | None
    available: int  # balance − held as stored: a read-only quote neither releases holds nor expires lots


class CheckoutRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_payer(self, member_id: uuid.UUID) -> Payer | None:
        row = await _PAYER.fetch_one(self.session, {"member_id": member_id})
        return (
            None
            if row is None
            else Payer(status=row[0], tier_id=row[1], plan_benefits_until=row[2], available=int(row[3]))
        )
