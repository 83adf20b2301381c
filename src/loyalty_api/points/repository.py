"""All queries of the points ledger: accounts, entries, lots, holds, orders."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from loyalty_api.db.base import Base
from loyalty_api.db.dialect import insert_or_ignore
from loyalty_api.db.ids import new_id
from loyalty_api.points.ledger import LotBalance
from loyalty_api.points.models import Hold, LedgerEntry, Order, PointLot, PointsAccount

_ACCOUNTS = cast(Table, PointsAccount.__table__)
_ENTRIES = cast(Table, LedgerEntry.__table__)
_LOTS = cast(Table, PointLot.__table__)
_ORDERS = cast(Table, Order.__table__)


# The hot path's statements are built once: building a statement costs more than running it.
_CHANGE_ACCOUNT = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.member_id == bindparam("account"))
    .values(
        balance=_ACCOUNTS.c.balance + bindparam("balance_change"),
        held=_ACCOUNTS.c.held + bindparam("held_change"),
        lifetime_earned=_ACCOUNTS.c.lifetime_earned + bindparam("lifetime_change"),
        updated_at=bindparam("now"),
    )
    .returning(_ACCOUNTS.c.balance, _ACCOUNTS.c.held, _ACCOUNTS.c.lifetime_earned)
)
_CHANGE_ACCOUNT_IF_AVAILABLE = _CHANGE_ACCOUNT.where(
    _ACCOUNTS.c.balance - _ACCOUNTS.c.held >= bindparam("needs")
)
_INSERT_ENTRY = insert(_ENTRIES)
_FIFO = (case((PointLot.expires_at.is_(None), 1), else_=0), PointLot.expires_at, PointLot.id)
_LIVE = select(PointLot.id, PointLot.remaining).where(
    PointLot.member_id == bindparam("member"), PointLot.remaining > 0
)
_LIVE_LOTS = _LIVE.order_by(*_FIFO)
_DUE_LOT_EXISTS = select(
    exists().where(
        PointLot.member_id == bindparam("member"),
        PointLot.remaining > 0,
        PointLot.expires_at <= bindparam("now", type_=PointLot.__table__.c.expires_at.type),
    )
)
_LIVE_LOTS_ORDER_FIRST = _LIVE.order_by(case((PointLot.order_ref == bindparam("first"), 0), else_=1), *_FIFO)
_INSERT_LOT = insert(_LOTS)
_TAKE_FROM_LOT = (
    update(_LOTS)
    .where(_LOTS.c.id == bindparam("lot"))
    .values(remaining=_LOTS.c.remaining - bindparam("taken"))
)


def _claim_order(insert_for_dialect: Any, *, stamp: str, points: str) -> Any:
    """INSERT the order, or on conflict update it only if `stamp` is unset and it is the same member's."""
    statement = insert_for_dialect(_ORDERS)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["order_ref"],
        set_={
            "currency": func.coalesce(_ORDERS.c.currency, excluded.currency),
            "amount_minor": func.coalesce(_ORDERS.c.amount_minor, excluded.amount_minor),
            points: excluded[points],
            stamp: excluded[stamp],
            **({"purchased_at": excluded.purchased_at} if stamp == "earned_at" else {}),
            "updated_at": excluded.updated_at,
        },
        where=(_ORDERS.c[stamp].is_(None)) & (_ORDERS.c.member_id == excluded.member_id),
    ).returning(_ORDERS.c.order_ref)


_CLAIM_EARN = {
    "postgresql": _claim_order(postgresql.insert, stamp="earned_at", points="points_earned"),
    "sqlite": _claim_order(sqlite.insert, stamp="earned_at", points="points_earned"),
}
_CLAIM_REDEEM = {
    "postgresql": _claim_order(postgresql.insert, stamp="redeemed_at", points="points_redeemed"),
    "sqlite": _claim_order(sqlite.insert, stamp="redeemed_at", points="points_redeemed"),
}


def _row(table: Table, record: Base) -> dict[str, object]:
    """The column values of an ORM object that is built but not added to the session (Core insert)."""
    return {column.key: getattr(record, column.key) for column in table.columns}


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
        params = {
            "account": member_id,
            "balance_change": balance,
            "held_change": held,
            "lifetime_change": lifetime,
            "now": now,
        }
        if needs_available is None:
            result = await self.session.execute(_CHANGE_ACCOUNT, params)
        else:
            result = await self.session.execute(
                _CHANGE_ACCOUNT_IF_AVAILABLE, params | {"needs": needs_available}
            )
        row = result.one_or_none()
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
        entry.id = entry.id or new_id()
        await self.session.execute(_INSERT_ENTRY, _row(_ENTRIES, entry))

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
        lot.id = lot.id or new_id()
        await self.session.execute(_INSERT_LOT, _row(_LOTS, lot))

    async def list_live_lots(
        self, member_id: uuid.UUID, *, order_ref_first: str | None = None
    ) -> list[LotBalance]:
        """Lots with points left, in spending order: soonest expiry first, never-expiring last."""
        order = [case((PointLot.expires_at.is_(None), 1), else_=0), PointLot.expires_at, PointLot.id]
        if order_ref_first is not None:
            order.insert(0, case((PointLot.order_ref == order_ref_first, 0), else_=1))
        result = await self.session.execute(
            select(PointLot.id, PointLot.remaining)
            .where(PointLot.member_id == member_id, PointLot.remaining > 0)
            .order_by(*order)
        )
        return [LotBalance(lot_id, remaining) for lot_id, remaining in result.all()]

    async def list_due_lots(self, member_id: uuid.UUID, now: datetime) -> list[LotBalance]:
        result = await self.session.execute(
            select(PointLot.id, PointLot.remaining)
            .where(PointLot.member_id == member_id, PointLot.remaining > 0, PointLot.expires_at <= now)
            .order_by(PointLot.expires_at, PointLot.id)
        )
        return [LotBalance(lot_id, remaining) for lot_id, remaining in result.all()]

    async def take(self, plan: Sequence[tuple[uuid.UUID, int]]) -> None:
        for lot_id, points in plan:
            await self.session.execute(_TAKE_FROM_LOT, {"lot": lot_id, "taken": points})

    async def list_members_with_due_lots(
        self, now: datetime, *, after: uuid.UUID | None, limit: int
    ) -> Sequence[uuid.UUID]:
        query = select(PointLot.member_id).where(PointLot.remaining > 0, PointLot.expires_at <= now)
        if after is not None:
            query = query.where(PointLot.member_id > after)
        result = await self.session.execute(
            query.group_by(PointLot.member_id).order_by(PointLot.member_id).limit(limit)
        )
        return result.scalars().all()

    async def exists_due_lot(self, member_id: uuid.UUID, now: datetime) -> bool:
        return bool(await self.session.scalar(_DUE_LOT_EXISTS, {"member": member_id, "now": now}))

    async def expiring_by_date(self, member_id: uuid.UUID, now: datetime) -> Sequence[tuple[datetime, int]]:
        result = await self.session.execute(
            select(PointLot.expires_at, PointLot.remaining)
            .where(PointLot.member_id == member_id, PointLot.remaining > 0, PointLot.expires_at > now)
            .order_by(PointLot.expires_at)
        )
        return [(expires_at, remaining) for expires_at, remaining in result.all() if expires_at is not None]


class HoldRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_hold(self, hold: Hold) -> None:
        self.session.add(hold)
        await self.session.flush()

    async def get_hold(self, hold_id: uuid.UUID) -> Hold | None:
        return await self.session.get(Hold, hold_id, populate_existing=True)

    async def exists_live_hold(self, member_id: uuid.UUID, order_ref: str, now: datetime) -> bool:
        found = await self.session.scalar(
            select(Hold.id).where(
                Hold.member_id == member_id,
                Hold.order_ref == order_ref,
                Hold.status == "active",
                Hold.expires_at > now,
            )
        )
        return found is not None

    async def resolve(self, hold: Hold, *, status: str, captured: int, now: datetime) -> bool:
        """End an active hold; False when it was no longer active (someone else ended it first)."""
        result = await self.session.execute(
            update(Hold)
            .where(Hold.id == hold.id, Hold.status == "active")
            .values(status=status, captured_points=captured, resolved_at=now)
            .returning(Hold.id)
            .execution_options(synchronize_session=False)
        )
        if result.scalar_one_or_none() is None:
            return False
        for name, value in (("status", status), ("captured_points", captured), ("resolved_at", now)):
            set_committed_value(hold, name, value)
        return True

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


def _new_order(order_ref: str, member_id: uuid.UUID, now: datetime) -> dict[str, object]:
    return {
        "order_ref": order_ref,
        "member_id": member_id,
        "currency": None,
        "amount_minor": None,
        "points_earned": 0,
        "points_redeemed": 0,
        "refunded_minor": 0,
        "points_taken_back": 0,
        "points_given_back": 0,
        "points_shortfall": 0,
        "earned_at": None,
        "purchased_at": None,
        "redeemed_at": None,
        "created_at": now,
        "updated_at": now,
    }


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_order(self, order_ref: str) -> Order | None:
        return await self.session.get(Order, order_ref, populate_existing=True)

    async def insert_order_if_new(self, order_ref: str, member_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            insert_or_ignore(self.session, _ORDERS, ["order_ref"]).values(
                _new_order(order_ref, member_id, now)
            )
        )

    async def claim_earn(
        self,
        order_ref: str,
        member_id: uuid.UUID,
        *,
        currency: str,
        amount_minor: int,
        points: int,
        purchased_at: datetime,
        now: datetime,
    ) -> bool:
        """Record that the order earned, in one statement; False when it already had, or is another
        member's order. The order's total stays the one a redeem may have given first."""
        values = _new_order(order_ref, member_id, now) | {
            "currency": currency,
            "amount_minor": amount_minor,
            "points_earned": points,
            "earned_at": now,
            "purchased_at": purchased_at,
        }
        result = await self.session.execute(_CLAIM_EARN[self.session.get_bind().dialect.name], values)
        return result.scalar_one_or_none() is not None

    async def claim_redeem(
        self,
        order_ref: str,
        member_id: uuid.UUID,
        *,
        points: int,
        total: tuple[str, int] | None,
        now: datetime,
    ) -> bool:
        """Record that points paid for the order, in one statement; False when they already had, or it is
        another member's order. `total` (currency, minor units) is kept if the order has none yet."""
        values = _new_order(order_ref, member_id, now) | {"points_redeemed": points, "redeemed_at": now}
        if total is not None:
            values |= {"currency": total[0], "amount_minor": total[1]}
        result = await self.session.execute(_CLAIM_REDEEM[self.session.get_bind().dialect.name], values)
        return result.scalar_one_or_none() is not None

    async def add_redeemed(self, order_ref: str, member_id: uuid.UUID, *, points: int, now: datetime) -> None:
        await self.session.execute(
            update(Order)
            .where(Order.order_ref == order_ref, Order.member_id == member_id)
            .values(
                points_redeemed=Order.points_redeemed + points,
                redeemed_at=func.coalesce(Order.redeemed_at, now),
                updated_at=now,
            )
        )
