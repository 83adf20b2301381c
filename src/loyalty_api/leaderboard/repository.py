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
from loyalty_api.orders.models import Order
from loyalty_api.points.models import LedgerEntry

# Entries that earn points for what the member did: purchases, referrals, activities. Exchanges in from a
# partner and operators' adjustments are not earned here; refunds take back what their purchase earned.
EARNED_TYPES = ("earn", "referral", "activity")
# Of those, the ones counted when they were entered; an earn counts when its purchase was made.
ENTERED_TYPES = ("referral", "activity")


@dataclass(frozen=True, slots=True)
class Leader:
    member_id: uuid.UUID
    member_number: str
    points: int


class LeaderboardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_leaders(
        self,
        start: datetime,
        end: datetime,
        *,
        entered: tuple[datetime, datetime],
        after: tuple[int, uuid.UUID] | None,
        limit: int,
    ) -> list[Leader]:
        """Active members who opted in, by the points they earned in [start, end) less what refunds (then or
        since) took back of them, most first (then by member id); only those left with more than none, and
        after `after` (points, member id) in that order. Ties go by id, not card number, so a page's cursor
        names only what the page shows: a card number in it would undo the board's mask.

        A purchase counts when it was made (its order's `purchased_at`; a partner's purchase, which keeps no
        time of its own, when it earned), not when its earn was entered: an offline till's receipt synced
        days later is its week's. `entered` is [from, until) of when the earn of a purchase made in the
        window can have been entered (the earn's own bounds on `occurred_at`), so the ledger is read by its
        time index over those instants only."""
        in_window = (LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
        made = func.coalesce(Order.purchased_at, LedgerEntry.created_at)
        made_in_window = (made >= start, made < end)
        purchases = (
            select(LedgerEntry.member_id, LedgerEntry.amount.label("points"))
            .outerjoin(Order, Order.order_ref == LedgerEntry.order_ref)
            .where(
                LedgerEntry.type == "earn",
                LedgerEntry.created_at >= entered[0],
                LedgerEntry.created_at < entered[1],
                *made_in_window,
            )
        )
        earned_then = select(LedgerEntry.member_id, LedgerEntry.amount.label("points")).where(
            LedgerEntry.type.in_(ENTERED_TYPES), *in_window
        )
        # A refund takes back from the window its purchase was made in, whenever it comes: returning last
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
                    LedgerEntry.created_at >= entered[0],
                    LedgerEntry.created_at < entered[1],
                ),
            )
            .outerjoin(Order, Order.order_ref == LedgerEntry.order_ref)
            .where(
                *made_in_window,
                refund.type == "refund",
                refund.details["settled_by"].as_string().is_(None),
                refund.details["settled_by_hold"].as_string().is_(None),
                refund.details["settled_by_exchange"].as_string().is_(None),
                refund.details["settled_by_transfer"].as_string().is_(None),
                refund.details["settled_by_end"].as_string().is_(None),
            )
        )
        moves = union_all(purchases, earned_then, taken_back).subquery()
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
