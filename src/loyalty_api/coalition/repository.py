"""The queries of settlement that span partners' exchanges and our ledger."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.partners.models import PartnerExchange
from loyalty_api.points.models import LedgerEntry


@dataclass(frozen=True, slots=True)
class EntryTotals:
    points: int  # the signed amounts added up
    partner_points: int | None  # of the exchanges the entries belong to; None for other entries
    entries: int


class SettlementRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def entry_totals(
        self, partner_id: uuid.UUID, start: datetime, end: datetime
    ) -> dict[str, EntryTotals]:
        """The partner's ledger entries made in [start, end), added up by type, with the partner's points of
        the exchanges they belong to (an entry is one exchange's, or its return's, or no exchange's)."""
        exchange = and_(
            PartnerExchange.partner_id == partner_id,
            or_(
                PartnerExchange.entry_id == LedgerEntry.id, PartnerExchange.return_entry_id == LedgerEntry.id
            ),
        )
        rows = await self.session.execute(
            select(
                LedgerEntry.type,
                func.sum(LedgerEntry.amount),
                func.sum(PartnerExchange.partner_points),
                func.count(LedgerEntry.id),
            )
            .outerjoin(PartnerExchange, exchange)
            .where(
                LedgerEntry.partner_id == partner_id,
                LedgerEntry.created_at >= start,
                LedgerEntry.created_at < end,
            )
            .group_by(LedgerEntry.type)
        )
        return {
            kind: EntryTotals(
                points=int(points), partner_points=None if ours is None else int(ours), entries=int(count)
            )
            for kind, points, ours, count in rows.all()
        }
