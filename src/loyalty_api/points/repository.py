"""All queries of the points ledger: accounts, entries, lots, holds, orders."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.db.dialect import insert_or_ignore
from loyalty_api.points.models import Hold, LedgerEntry, Order, PointLot, PointsAccount

_ACCOUNTS = cast(Table, PointsAccount.__table__)


@dataclass(frozen=True, slots=True)
class AccountState:
    balance: int
    held: int
    lifetime_earned: int

    @property
    def available(self) -> int:
        return self.balance - self.held


class PointsAccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_account(self, member_id: uuid.UUID, now: datetime) -> None:
        self.session.add(
            PointsAccount(member_id=member_id, balance=0, held=0, lifetime_earned=0, updated_at=now)
        )
        await self.session.flush()

    async def change(
        self,
        member_id: uuid.UUID,
        *,
        now: datetime,
        balance: int = 0,
        held: int = 0,
        lifetime: int = 0,
        needs_available: int | None = None,
    ) -> AccountState | None:
        """Change the account in one statement, which also locks the row until commit.

        With `needs_available` the change happens only if balance − held ≥ that many points; None is
        returned when it does not (or when the member has no account).
        """
        statement = (
            update(_ACCOUNTS)
            .where(_ACCOUNTS.c.member_id == member_id)
            .values(
                balance=_ACCOUNTS.c.balance + balance,
                held=_ACCOUNTS.c.held + held,
                lifetime_earned=_ACCOUNTS.c.lifetime_earned + lifetime,
                updated_at=now,
            )
            .returning(_ACCOUNTS.c.balance, _ACCOUNTS.c.held, _ACCOUNTS.c.lifetime_earned)
        )
        if needs_available is not None:
            statement = statement.where(_ACCOUNTS.c.balance - _ACCOUNTS.c.held >= needs_available)
        row = (await self.session.execute(statement)).one_or_none()
        return None if row is None else AccountState(balance=row[0], held=row[1], lifetime_earned=row[2])

    async def lock(self, member_id: uuid.UUID, now: datetime) -> AccountState | None:
        return await self.change(member_id, now=now)

    async def get_state(self, member_id: uuid.UUID) -> AccountState | None:
        row = (
            await self.session.execute(
                select(_ACCOUNTS.c.balance, _ACCOUNTS.c.held, _ACCOUNTS.c.lifetime_earned).where(
                    _ACCOUNTS.c.member_id == member_id
                )
            )
        ).one_or_none()
        return None if row is None else AccountState(balance=row[0], held=row[1], lifetime_earned=row[2])


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_entry(self, entry: LedgerEntry) -> None:
        self.session.add(entry)
        await self.session.flush()

    async def list_entries(
        self,
        member_id: uuid.UUID,
        *,
        types: Sequence[str],
        since: datetime | None,
        until: datetime | None,
        before_id: uuid.UUID | None,
        limit: int,
    ) -> Sequence[LedgerEntry]:
        query = select(LedgerEntry).where(LedgerEntry.member_id == member_id)
        if types:
            query = query.where(LedgerEntry.type.in_(types))
        if since is not None:
            query = query.where(LedgerEntry.created_at >= since)
        if until is not None:
            query = query.where(LedgerEntry.created_at < until)
        if before_id is not None:
            query = query.where(LedgerEntry.id < before_id)
        result = await self.session.execute(query.order_by(LedgerEntry.id.desc()).limit(limit))
        return result.scalars().all()


class LotRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_lot(self, lot: PointLot) -> None:
        self.session.add(lot)

    async def list_live_lots(
        self, member_id: uuid.UUID, *, order_ref_first: str | None = None
    ) -> Sequence[PointLot]:
        """Lots with points left, in spending order: soonest expiry first, never-expiring last."""
        order = [case((PointLot.expires_at.is_(None), 1), else_=0), PointLot.expires_at, PointLot.id]
        if order_ref_first is not None:
            order.insert(0, case((PointLot.order_ref == order_ref_first, 0), else_=1))
        result = await self.session.execute(
            select(PointLot).where(PointLot.member_id == member_id, PointLot.remaining > 0).order_by(*order)
        )
        return result.scalars().all()

    async def list_due_lots(self, member_id: uuid.UUID, now: datetime) -> Sequence[PointLot]:
        result = await self.session.execute(
            select(PointLot)
            .where(PointLot.member_id == member_id, PointLot.remaining > 0, PointLot.expires_at <= now)
            .order_by(PointLot.expires_at, PointLot.id)
        )
        return result.scalars().all()

    async def list_members_with_due_lots(self, now: datetime, limit: int) -> Sequence[uuid.UUID]:
        result = await self.session.execute(
            select(PointLot.member_id)
            .where(PointLot.remaining > 0, PointLot.expires_at <= now)
            .group_by(PointLot.member_id)
            .order_by(func.min(PointLot.expires_at))
            .limit(limit)
        )
        return result.scalars().all()

    async def expiring_by_date(self, member_id: uuid.UUID, now: datetime) -> Sequence[tuple[datetime, int]]:
        result = await self.session.execute(
            select(PointLot.expires_at, PointLot.remaining)
            .where(PointLot.member_id == member_id, PointLot.remaining > 0, PointLot.expires_at > now)
            .order_by(PointLot.expires_at)
        )
        return [(expires_at, remaining) for expires_at, remaining in result.all() if expires_at is not None]

    async def sum_live(self, member_id: uuid.UUID) -> int:
        total = await self.session.scalar(
            select(func.coalesce(func.sum(PointLot.remaining), 0)).where(PointLot.member_id == member_id)
        )
        return int(total or 0)


class HoldRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_hold(self, hold: Hold) -> None:
        self.session.add(hold)
        await self.session.flush()

    async def get_hold(self, hold_id: uuid.UUID) -> Hold | None:
        return await self.session.get(Hold, hold_id, populate_existing=True)

    async def exists_active_hold(self, member_id: uuid.UUID, order_ref: str) -> bool:
        found = await self.session.scalar(
            select(Hold.id).where(
                Hold.member_id == member_id, Hold.order_ref == order_ref, Hold.status == "active"
            )
        )
        return found is not None

    async def list_expired_active(self, now: datetime, limit: int) -> Sequence[uuid.UUID]:
        result = await self.session.execute(
            select(Hold.id)
            .where(Hold.status == "active", Hold.expires_at <= now)
            .order_by(Hold.expires_at)
            .limit(limit)
        )
        return result.scalars().all()

    async def list_member_expired_active(self, member_id: uuid.UUID, now: datetime) -> Sequence[Hold]:
        result = await self.session.execute(
            select(Hold).where(Hold.member_id == member_id, Hold.status == "active", Hold.expires_at <= now)
        )
        return result.scalars().all()


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_order(self, order_ref: str) -> Order | None:
        return await self.session.get(Order, order_ref, populate_existing=True)

    async def insert_order_if_new(self, order_ref: str, member_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            insert_or_ignore(self.session, Order.__table__, ["order_ref"]).values(
                order_ref=order_ref,
                member_id=member_id,
                currency=None,
                amount_minor=None,
                points_earned=0,
                points_redeemed=0,
                refunded_minor=0,
                points_taken_back=0,
                points_given_back=0,
                points_shortfall=0,
                earned_at=None,
                redeemed_at=None,
                created_at=now,
                updated_at=now,
            )
        )

    async def mark_earned(
        self,
        order_ref: str,
        member_id: uuid.UUID,
        *,
        currency: str,
        amount_minor: int,
        points: int,
        now: datetime,
    ) -> bool:
        result = await self.session.execute(
            update(Order)
            .where(Order.order_ref == order_ref, Order.member_id == member_id, Order.earned_at.is_(None))
            .values(
                currency=func.coalesce(Order.currency, currency),
                amount_minor=func.coalesce(Order.amount_minor, amount_minor),
                points_earned=points,
                earned_at=now,
                updated_at=now,
            )
            .returning(Order.order_ref)
        )
        return result.scalar_one_or_none() is not None

    async def mark_redeemed(
        self, order_ref: str, member_id: uuid.UUID, *, points: int, now: datetime
    ) -> bool:
        result = await self.session.execute(
            update(Order)
            .where(Order.order_ref == order_ref, Order.member_id == member_id, Order.redeemed_at.is_(None))
            .values(points_redeemed=points, redeemed_at=now, updated_at=now)
            .returning(Order.order_ref)
        )
        return result.scalar_one_or_none() is not None

    async def set_total_if_unknown(self, order_ref: str, *, currency: str, amount_minor: int) -> None:
        await self.session.execute(
            update(Order)
            .where(Order.order_ref == order_ref, Order.amount_minor.is_(None))
            .values(currency=currency, amount_minor=amount_minor)
        )

    async def add_redeemed(self, order_ref: str, *, points: int, now: datetime) -> None:
        await self.session.execute(
            update(Order)
            .where(Order.order_ref == order_ref)
            .values(
                points_redeemed=Order.points_redeemed + points,
                redeemed_at=func.coalesce(Order.redeemed_at, now),
                updated_at=now,
            )
        )
