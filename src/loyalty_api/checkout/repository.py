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
from loyalty_api.points.ledger import StoredAccount
from loyalty_api.points.models import PointLot, PointsAccount
from loyalty_api.points.repository import stored_account, stored_account_columns

# A plain SELECT: no FOR UPDATE, so a quote never waits for, nor holds up, an earn or a redeem. With what the
# jobs have yet to settle, so the quote offers the points the hold after it will find.
_PAYER = DirectStatement(
    select(
        Member.status,
        Member.tier_id,
        Member.plan_benefits_until,
        *stored_account_columns(
            PointsAccount.member_id, bindparam("now", type_=PointLot.__table__.c.expires_at.type)
        ),
    )
    .join(PointsAccount, PointsAccount.member_id == Member.id)
    .where(Member.id == bindparam("member_id"), not_erased())
)


@dataclass(frozen=True, slots=True)
class Payer:
    status: str
    tier_id: uuid.UUID | None
    plan_benefits_until: datetime | None
    account: StoredAccount


class CheckoutRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_payer(self, member_id: uuid.UUID, now: datetime) -> Payer | None:
        row = await _PAYER.fetch_one(self.session, {"member_id": member_id, "now": now})
        if row is None:
            return None
        return Payer(
            status=row[0], tier_id=row[1], plan_benefits_until=row[2], account=stored_account(row[3:])
        )
