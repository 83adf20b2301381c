"""All queries of orders: what each order earned, redeemed and had refunded, and what members bought (what
tiers, lifecycles and segments count). An earn claims its order in the statement that writes the rest of it
(points/repository.py), so the claim is built here and handed over."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, delete, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.db.dialect import insert_or_ignore
from loyalty_api.db.direct import DirectStatement
from loyalty_api.db.prefixed import Row, prefixed_binds
from loyalty_api.orders.models import ORDER_OWES_POINTS, Order

_ORDERS = cast(Table, Order.__table__)


# No refund moved anything on the order yet: a refunded order takes no new points (OrderRefunded).
_NOT_REFUNDED = (
    (_ORDERS.c.refunded_minor == 0)
    & (_ORDERS.c.points_taken_back == 0)
    & (_ORDERS.c.points_given_back == 0)
    & (_ORDERS.c.points_shortfall == 0)
)


def claim_order(insert_for_dialect: Any, *, stamp: str, points: str, prefix: str | None = None) -> Any:
    """INSERT the order, or on conflict update it only if `stamp` is unset, it is the same member's and no
    refund touched it. With `prefix`, its values are bound as `<prefix>__<column>` (to sit beside other
    statements' values)."""
    statement = insert_for_dialect(_ORDERS)
    if prefix is not None:
        statement = statement.values(prefixed_binds(_ORDERS, prefix))
    excluded = statement.excluded
    # The order's total, which refunds are measured against: an order_total a payment with points gives (a
    # redeem, or a capture: add_redeemed) is the whole order's, and replaces the cash amount an earn kept; an
    # earn's amount is the total only while none was given. (No refund has happened: see the WHERE.)
    kept, given = (excluded, _ORDERS.c) if stamp == "redeemed_at" else (_ORDERS.c, excluded)
    return statement.on_conflict_do_update(
        index_elements=["order_ref"],
        set_={
            "currency": func.coalesce(kept.currency, given.currency),
            "amount_minor": func.coalesce(kept.amount_minor, given.amount_minor),
            points: excluded[points],
            stamp: excluded[stamp],
            **({"purchased_at": excluded.purchased_at} if stamp == "earned_at" else {}),
            "updated_at": excluded.updated_at,
        },
        where=(_ORDERS.c[stamp].is_(None)) & (_ORDERS.c.member_id == excluded.member_id) & _NOT_REFUNDED,
    )


# What an order counts for tiers: paid less refunded, and points earned less points taken back (including
# those a refund could not take back because they were already spent).
_ORDER_NET_SPEND = _ORDERS.c.amount_minor - _ORDERS.c.refunded_minor
_ORDER_NET_POINTS = _ORDERS.c.points_earned - _ORDERS.c.points_taken_back - _ORDERS.c.points_shortfall
_PURCHASE_TIME = _ORDERS.c.purchased_at.type


def purchases_since(since: str) -> Select[Any]:
    """(net spend, net points) of the purchases of the member bound as `member` made at or after `since`."""
    return select(
        func.coalesce(func.sum(_ORDER_NET_SPEND), 0).label("spend"),
        func.coalesce(func.sum(_ORDER_NET_POINTS), 0).label("points"),
    ).where(
        _ORDERS.c.member_id == bindparam("member"),
        _ORDERS.c.purchased_at >= bindparam(since, type_=_PURCHASE_TIME),
    )


_PURCHASES_SINCE = purchases_since("start")
_PURCHASES_BETWEEN = _PURCHASES_SINCE.where(_ORDERS.c.purchased_at < bindparam("end", type_=_PURCHASE_TIME))

CLAIMED_EARN = (_ORDER_NET_SPEND.label("spend"), _ORDER_NET_POINTS.label("points"), _ORDERS.c.purchased_at)
CLAIM_EARN_SQLITE = claim_order(sqlite.insert, stamp="earned_at", points="points_earned").returning(
    *CLAIMED_EARN
)
_DIALECT_INSERTS = (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))


def _claims(stamp: str, points: str) -> dict[str, DirectStatement[Any]]:
    """The claim by `stamp` for each dialect, answering the order's reference when it took."""
    return {
        dialect: DirectStatement(
            claim_order(insert_for, stamp=stamp, points=points).returning(_ORDERS.c.order_ref)
        )
        for dialect, insert_for in _DIALECT_INSERTS
    }


_CLAIM_EARN = _claims("earned_at", "points_earned")
_CLAIM_REDEEM = _claims("redeemed_at", "points_redeemed")


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
        "partner_customer_ref": None,
        "redeemed_at": None,
        "created_at": now,
        "updated_at": now,
    }


def earned_order_row(
    order_ref: str,
    member_id: uuid.UUID,
    *,
    currency: str,
    amount_minor: int,
    points: int,
    purchased_at: datetime | None,
    now: datetime,
    partner_customer_ref: str | None = None,
) -> Row:
    """The orders row an earn claims. An order a redeem or a capture wrote first keeps the total it gave.
    Without `purchased_at` the purchase does not count for tiers. A partner's purchase keeps the reference of
    the customer it was made under (`partner_customer_ref`)."""
    return _new_order(order_ref, member_id, now) | {
        "currency": currency,
        "amount_minor": amount_minor,
        "points_earned": points,
        "earned_at": now,
        "purchased_at": purchased_at,
        "partner_customer_ref": partner_customer_ref,
    }


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_last_purchases(self, member_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, datetime]:
        """When each of `member_ids` last bought (those who never did are left out)."""
        rows = await self.session.execute(
            select(_ORDERS.c.member_id, func.max(_ORDERS.c.purchased_at))
            .where(_ORDERS.c.member_id.in_(member_ids), _ORDERS.c.purchased_at.is_not(None))
            .group_by(_ORDERS.c.member_id)
        )
        return {member_id: at for member_id, at in rows.all()}

    async def get_purchase_totals(
        self, member_id: uuid.UUID, start: datetime, end: datetime | None = None
    ) -> tuple[int, int]:
        """(spend in minor units, points) of the member's purchases made at or after `start` (and before
        `end`, when given), net of refunds: what tiers count."""
        params = {"member": member_id, "start": start}
        if end is None:
            row = (await self.session.execute(_PURCHASES_SINCE, params)).one()
        else:
            row = (await self.session.execute(_PURCHASES_BETWEEN, params | {"end": end})).one()
        return int(row[0] or 0), int(row[1] or 0)

    async def orders_of(self, member_id: uuid.UUID, *, after_ref: str | None, limit: int) -> Sequence[Order]:
        """The member's orders (purchases, redemptions, captures) after `after_ref`, in order_ref order."""
        query = select(Order).where(Order.member_id == member_id)
        if after_ref is not None:
            query = query.where(Order.order_ref > after_ref)
        result = await self.session.execute(query.order_by(Order.order_ref).limit(limit))
        return result.scalars().all()

    async def list_shortfalls(self, member_id: uuid.UUID, *, other_than: str | None) -> Sequence[Order]:
        """The member's orders (but `other_than`) whose refunds could not take back every point they earned,
        oldest first."""
        query = select(Order).where(Order.member_id == member_id, ORDER_OWES_POINTS)
        if other_than is not None:
            query = query.where(Order.order_ref != other_than)
        result = await self.session.execute(query.order_by(Order.created_at, Order.order_ref))
        return result.scalars().all()

    async def get_order(self, order_ref: str) -> Order | None:
        return await self.session.get(Order, order_ref, populate_existing=True)

    async def forget_partner_refs(self, member_id: uuid.UUID) -> list[str]:
        """For an erasure: the partners' references of the customer the member's purchases at partners were
        made under, which their orders then forget."""
        refs = await self.session.scalars(
            select(Order.partner_customer_ref)
            .distinct()
            .where(Order.member_id == member_id, Order.partner_customer_ref.is_not(None))
        )
        found = [ref for ref in refs.all() if ref is not None]
        if found:
            await self.session.execute(
                update(Order)
                .where(Order.member_id == member_id, Order.partner_customer_ref.is_not(None))
                .values(partner_customer_ref=None)
            )
        return found

    async def insert_order_if_new(self, order_ref: str, member_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            insert_or_ignore(self.session, _ORDERS, ["order_ref"]).values(
                _new_order(order_ref, member_id, now)
            )
        )

    async def delete_if_untouched(self, order_ref: str, member_id: uuid.UUID) -> None:
        """Remove the member's order if nothing was earned, redeemed or refunded on it: the row a hold wrote
        (insert_order_if_new) and nothing else did. The caller knows no hold of theirs still uses it."""
        await self.session.execute(
            delete(Order).where(
                Order.order_ref == order_ref,
                Order.member_id == member_id,
                Order.earned_at.is_(None),
                Order.redeemed_at.is_(None),
                Order.points_earned == 0,
                Order.points_redeemed == 0,
                _NOT_REFUNDED,
            )
        )

    async def claim_earn(self, order: Row) -> bool:
        """Record that the order earned, in one statement; False when it had already, or it is another
        member's order."""
        claim = _CLAIM_EARN[self.session.get_bind().dialect.name]
        return await claim.fetch_one(self.session, order) is not None

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
        another member's order, or a refunded one. `total` (currency, minor units) becomes the order's
        total, replacing an earn's cash amount."""
        values = _new_order(order_ref, member_id, now) | {"points_redeemed": points, "redeemed_at": now}
        if total is not None:
            values |= {"currency": total[0], "amount_minor": total[1]}
        claim = _CLAIM_REDEEM[self.session.get_bind().dialect.name]
        return await claim.fetch_one(self.session, values) is not None

    async def add_redeemed(
        self,
        order_ref: str,
        member_id: uuid.UUID,
        *,
        points: int,
        total: tuple[str, int] | None = None,
        now: datetime,
    ) -> None:
        """Add captured points to what the order redeemed. `total` (currency, minor units), the capture's
        order_total, becomes the order's total, as a redeem's does: it replaces the cash amount an earn
        gave (claim_order)."""
        totals = (
            {}
            if total is None
            else {
                "currency": literal(total[0], _ORDERS.c.currency.type),
                # Typed as the column: an untyped 10^12 would be bound as a 32-bit integer on PostgreSQL.
                "amount_minor": literal(total[1], _ORDERS.c.amount_minor.type),
            }
        )
        await self.session.execute(
            update(Order)
            .where(Order.order_ref == order_ref, Order.member_id == member_id)
            .values(
                points_redeemed=Order.points_redeemed + points,
                redeemed_at=func.coalesce(Order.redeemed_at, now),
                updated_at=now,
                **totals,
            )
        )
