"""The queries of settlement that span partners' exchanges and our ledger."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from loyalty_api.partners.models import PartnerExchange
from loyalty_api.points.models import LedgerEntry
from loyalty_api.program.models import PointValueChange


@dataclass(frozen=True, slots=True)
class EntryGroup:
    """A partner's ledger entries of one type whose points were moved at one point value."""

    type: str
    point_value_minor: Decimal | None  # None: the programme has never recorded one
    points: int  # the signed amounts added up
    partner_points: int | None  # of the exchanges the entries belong to; None for other entries
    entries: int


class SettlementRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def entry_groups(self, partner_id: uuid.UUID, start: datetime, end: datetime) -> list[EntryGroup]:
        """The partner's ledger entries made in [start, end), added up by type and by the point value in force
        when their points moved first: a return when its exchange's entry was made, a refund when the purchase
        it refunds earned, any other entry when it was made. With the partner's points of the exchanges they
        belong to (an entry is one exchange's, or its return's, or no exchange's)."""
        exchange = and_(
            PartnerExchange.partner_id == partner_id,
            or_(
                PartnerExchange.entry_id == LedgerEntry.id, PartnerExchange.return_entry_id == LedgerEntry.id
            ),
        )
        earned, sent = aliased(LedgerEntry), aliased(LedgerEntry)
        # The exchange's own entry: a return is worth what the points it gives back were worth when they left.
        sent_at = (
            select(sent.created_at).where(sent.id == PartnerExchange.entry_id).correlate(PartnerExchange)
        ).scalar_subquery()
        earned_at = (
            select(func.min(earned.created_at))
            .where(
                earned.order_ref == LedgerEntry.order_ref,
                earned.type == "earn",
                earned.partner_id == partner_id,
            )
            .correlate(LedgerEntry)
            .scalar_subquery()
        )
        moved = (
            select(
                LedgerEntry.type,
                LedgerEntry.amount,
                PartnerExchange.partner_points,
                case(
                    (LedgerEntry.type == "exchange_return", func.coalesce(sent_at, LedgerEntry.created_at)),
                    (LedgerEntry.type == "refund", func.coalesce(earned_at, LedgerEntry.created_at)),
                    else_=LedgerEntry.created_at,
                ).label("moved_at"),
            )
            .outerjoin(PartnerExchange, exchange)
            .where(
                LedgerEntry.partner_id == partner_id,
                LedgerEntry.created_at >= start,
                LedgerEntry.created_at < end,
            )
            .subquery()
        )
        # Points moved before the first change recorded (none is older than migration 0032) are worth its
        # value: the programme's value then, as far as anyone knows.
        first = (
            select(PointValueChange.point_value_minor)
            .order_by(PointValueChange.effective_at)
            .limit(1)
            .scalar_subquery()
        )
        value_then = func.coalesce(
            select(PointValueChange.point_value_minor)
            .where(PointValueChange.effective_at <= moved.c.moved_at)
            .order_by(PointValueChange.effective_at.desc())
            .limit(1)
            .correlate(moved)
            .scalar_subquery(),
            first,
        )
        valued = select(
            moved.c.type, moved.c.amount, moved.c.partner_points, value_then.label("point_value")
        ).subquery()
        rows = await self.session.execute(
            select(
                valued.c.type,
                valued.c.point_value,
                func.sum(valued.c.amount),
                func.sum(valued.c.partner_points),
                func.count(),
            ).group_by(valued.c.type, valued.c.point_value)
        )
        return [
            EntryGroup(
                type=kind,
                point_value_minor=value,
                points=int(points),
                partner_points=None if ours is None else int(ours),
                entries=int(count),
            )
            for kind, value, points, ours, count in rows.all()
        ]
