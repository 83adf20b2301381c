"""The leaderboard's one query: points earned in a window by members who opted in, added up by the
database (the same on PostgreSQL and SQLite)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, ColumnElement, and_, cast, func, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

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
        self, start: datetime, end: datetime, *, after: tuple[int, uuid.UUID] | None, limit: int
    ) -> list[Leader]:
        """Active members who opted in, by the points they earned in [start, end) less what refunds (then or
        since) took back of them, most first (then by member id); only those left with more than none, and
        after `after` (points, member id) in that order. Ties go by id, not card number, so a page's cursor
        names only what the page shows: a card number in it would undo the board's mask."""
        in_window = (LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
        earned_then = select(LedgerEntry.member_id, LedgerEntry.amount.label("points")).where(
            LedgerEntry.type.in_(EARNED_TYPES), *in_window
        )
        # A refund takes back from the window its purchase was earned in, whenever it comes: returning last
        # week's purchase this week leaves this week's board alone. It takes back all the purchase's points
        # it undoes, as it does from lifetime_earned: those it took, those already expired (`already_expired`)
        # and those the member had spent and now owes (`shortfall`). The entry that later settles what is
        # owed (`settled_by`, `settled_by_hold`, `settled_by_exchange`, `settled_by_transfer`, and
        # `settled_by_end` when the order's own points reached their end) was counted with its refund's
        # shortfall: not again. A return that voided the purchase's referral takes back
        # the whole reward (`not_taken_back`: what the friend had spent of it), as it leaves lifetime_earned.
        refund = aliased(LedgerEntry)

        def detail(name: str) -> ColumnElement[int]:
            return func.coalesce(cast(refund.details[name].as_string(), BigInteger), 0)

        taken_back = (
            select(
                refund.member_id,
                -(
                    detail("taken_back")
                    + detail("shortfall")
                    + detail("already_expired")
                    + detail("not_taken_back")
                ),
            )
            .join(
                LedgerEntry,
                and_(
                    LedgerEntry.member_id == refund.member_id,
                    LedgerEntry.order_ref == refund.order_ref,
                    LedgerEntry.type == "earn",
                    *in_window,
                ),
            )
            .where(
                refund.type == "refund",
                refund.details["settled_by"].as_string().is_(None),
                refund.details["settled_by_hold"].as_string().is_(None),
                refund.details["settled_by_exchange"].as_string().is_(None),
                refund.details["settled_by_transfer"].as_string().is_(None),
                refund.details["settled_by_end"].as_string().is_(None),
            )
        )
        moves = union_all(earned_then, taken_back).subquery()
        earned = func.sum(moves.c.points).label("earned")
        keyset = (
            () if after is None else (or_(earned < after[0], and_(earned == after[0], Member.id > after[1])),)
        )
        rows = await self.session.execute(
            select(Member.id, Member.member_number, earned)
            .join(moves, moves.c.member_id == Member.id)
            .where(Member.leaderboard_opt_in.is_(True), Member.status == MemberStatus.active)
            .group_by(Member.id, Member.member_number)
            .having(earned > 0, *keyset)
            .order_by(earned.desc(), Member.id)
            .limit(limit)
        )
        return [Leader(member_id, number, int(points)) for member_id, number, points in rows.all()]
