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
from loyalty_api.points.ledger import as_a_spend_finds
from loyalty_api.points.models import PointLot, PointsAccount
from loyalty_api.points.repository import due_lot_points, expired_hold_points

_NOW = bindparam("now", type_=PointLot.__table__.c.expires_at.type)
# A plain SELECT: no FOR UPDATE, so a quote never waits for, nor holds up, an earn or a redeem. With the
# points a spend would find: holds past their time and lots past their end, which the jobs may not have
# reached, counted as the hold that follows the quote will count them.
_PAYER = DirectStatement(
    select(
        Member.status,
        Member.tier_id,
        Member.plan_benefits_until,
        PointsAccount.balance,
        PointsAccount.held,
        expired_hold_points(Member.id, _NOW),
        due_lot_points(Member.id, _NOW),
    )
    .join(PointsAccount, PointsAccount.member_id == Member.id)
    .where(Member.id == bindparam("member_id"), not_erased())
)


@dataclass(frozen=True, slots=True)
class Payer:
    status: str
    tier_id: uuid.UUID | None
    plan_benefits_until: datetime | None
    available: int  # what a spend now would find (points/ledger.as_a_spend_finds); the quote changes nothing


class CheckoutRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_payer(self, member_id: uuid.UUID, now: datetime) -> Payer | None:
        row = await _PAYER.fetch_one(self.session, {"member_id": member_id, "now": now})
        if row is None:
            return None
        status, tier_id, plan_benefits_until, balance, held, expired_held, due = row
        balance, held = as_a_spend_finds(balance, held, expired_held=int(expired_held), due=int(due))
        return Payer(
            status=status, tier_id=tier_id, plan_benefits_until=plan_benefits_until, available=balance - held
        )
