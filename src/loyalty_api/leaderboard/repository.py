"""The leaderboard's one query: points earned in a window by members who opted in, added up by the
database (the same on PostgreSQL and SQLite)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.members.models import Member, MemberStatus
from loyalty_api.points.models import LedgerEntry

# Entries that earn points for what the member did: purchases, referrals, activities. Exchanges in from a
# partner and operators' adjustments are not earned here; refunds take back what their purchase earned.
EARNED_TYPES = ("earn", "referral", "activity")


@dataclass(frozen=True, slots=True)
class Leader:
    member_id: uuid.UUID
    member_number: str
    points: int


class LeaderboardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_leaders(
        self, start: datetime, end: datetime, *, after: tuple[int, str] | None, limit: int
    ) -> list[Leader]:
        """Active members who opted in, by the points they earned in [start, end) less what refunds took back
        of them then, most first (then by card number); only those left with more than none, and after
        `after` (points, card number) in that order."""
        taken_back = LedgerEntry.details["taken_back"].as_integer()
        earned = func.sum(
            case(
                (LedgerEntry.type.in_(EARNED_TYPES), LedgerEntry.amount),
                (LedgerEntry.type == "refund", -func.coalesce(taken_back, 0)),
                else_=0,
            )
        ).label("earned")
        rows = await self.session.execute(
            select(Member.id, Member.member_number, earned)
            .join(LedgerEntry, LedgerEntry.member_id == Member.id)
            .where(
                Member.leaderboard_opt_in.is_(True),
                Member.status == MemberStatus.active,
                LedgerEntry.created_at >= start,
                LedgerEntry.created_at < end,
                LedgerEntry.type.in_((*EARNED_TYPES, "refund")),
            )
            .group_by(Member.id, Member.member_number)
            .having(
                earned > 0
                if after is None
                else or_(earned < after[0], and_(earned == after[0], Member.member_number > after[1]))
            )
            .order_by(earned.desc(), Member.member_number)
            .limit(limit)
        )
        return [Leader(member_id, number, int(points)) for member_id, number, points in rows.all()]
