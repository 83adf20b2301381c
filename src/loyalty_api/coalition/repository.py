"""The queries of settlement that span partners' exchanges and our ledger."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.partners.models import PartnerExchange
from loyalty_api.points.models import LedgerEntry
from loyalty_api.program.models import PointValueChange


@dataclass(slots=True)
class EntryTotals:
    points: int  # the signed amounts added up
    partner_points: int | None  # of the exchanges the entries belong to; None for other entries
    entries: int
    # The signed amounts' exact value in minor units, each entry's points at the point value in force when it
    # was made (rounded by whoever shows it, once).
    worth: Decimal


class SettlementRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def entry_totals(
        self, partner_id: uuid.UUID, start: datetime, end: datetime, *, point_value_minor: Decimal
    ) -> dict[str, EntryTotals]:
        """The partner's ledger entries made in [start, end), added up by type, with the partner's points of
        the exchanges they belong to (an entry is one exchange's, or its return's, or no exchange's) and
        their worth. An entry made before the first recorded point value is worth the first one; with none
        recorded, every entry is worth `point_value_minor` (the programme's)."""
        exchange = and_(
            PartnerExchange.partner_id == partner_id,
            or_(
                PartnerExchange.entry_id == LedgerEntry.id, PartnerExchange.return_entry_id == LedgerEntry.id
            ),
        )
        value_then = (
            select(PointValueChange.point_value_minor)
            .where(PointValueChange.at <= LedgerEntry.created_at)
            .order_by(PointValueChange.at.desc(), PointValueChange.id.desc())
            .limit(1)
            .correlate(LedgerEntry)
            .scalar_subquery()
        )
        entries = (
            select(
                LedgerEntry.type,
                LedgerEntry.amount,
                PartnerExchange.partner_points,
                value_then.label("point_value"),
            )
            .outerjoin(PartnerExchange, exchange)
            .where(
                LedgerEntry.partner_id == partner_id,
                LedgerEntry.created_at >= start,
                LedgerEntry.created_at < end,
            )
            .subquery()
        )
        rows = await self.session.execute(
            select(
                entries.c.type,
                entries.c.point_value,
                func.sum(entries.c.amount),
                func.sum(entries.c.partner_points),
                func.count(),
            ).group_by(entries.c.type, entries.c.point_value)
        )
        first = await self.session.scalar(
            select(PointValueChange.point_value_minor)
            .order_by(PointValueChange.at, PointValueChange.id)
            .limit(1)
        )
        totals: dict[str, EntryTotals] = {}
        for kind, value, points, ours, count in rows.all():
            worth = Decimal(int(points)) * (value if value is not None else first or point_value_minor)
            found = totals.get(kind)
            if found is None:
                totals[kind] = EntryTotals(
                    points=int(points),
                    partner_points=None if ours is None else int(ours),
                    entries=int(count),
                    worth=worth,
                )
                continue
            found.points += int(points)
            if ours is not None:
                found.partner_points = (found.partner_points or 0) + int(ours)
            found.entries += int(count)
            found.worth += worth
        return totals
