"""All queries of coupons."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.coupons.models import Coupon

ListFilter = Literal["active", "used", "expired"]


class CouponRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_coupon_if_new(self, values: dict[str, Any]) -> Coupon | None:
        """INSERT … ON CONFLICT DO NOTHING: None when the code or the issue key is taken already."""
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        statement = dialect.insert(Coupon).values(values).on_conflict_do_nothing().returning(Coupon)
        return (await self.session.scalars(statement)).one_or_none()

    async def get_coupon_by_code(self, code: str) -> Coupon | None:
        result = await self.session.execute(
            select(Coupon).where(Coupon.code == code).execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def exists_issue_key(self, issue_key: str) -> bool:
        return await self.session.scalar(select(Coupon.id).where(Coupon.issue_key == issue_key)) is not None

    async def list_member_coupons_by_code(
        self, member_id: uuid.UUID, codes: Sequence[str]
    ) -> Sequence[Coupon]:
        if not codes:
            return []
        result = await self.session.execute(
            select(Coupon).where(Coupon.member_id == member_id, Coupon.code.in_(codes))
        )
        return result.scalars().all()

    async def list_coupons(
        self,
        member_id: uuid.UUID,
        *,
        status: ListFilter | None,
        now: datetime,
        before_id: uuid.UUID | None,
        limit: int,
    ) -> Sequence[Coupon]:
        query = select(Coupon).where(Coupon.member_id == member_id)
        if status == "used":
            query = query.where(Coupon.status == "used")
        elif status == "active":
            query = query.where(Coupon.status == "active", Coupon.valid_until > now)
        elif status == "expired":
            query = query.where(Coupon.status == "active", Coupon.valid_until <= now)
        if before_id is not None:
            query = query.where(Coupon.id < before_id)
        result = await self.session.execute(query.order_by(Coupon.id.desc()).limit(limit))
        return result.scalars().all()

    async def use_coupon(
        self, code: str, *, member_id: uuid.UUID | None, order_ref: str, now: datetime
    ) -> Coupon | None:
        """Mark the coupon used in one statement, only if it is active and valid now (and, given a member,
        theirs). None when it was not: two requests racing for one coupon cannot both get it."""
        statement = (
            update(Coupon)
            .where(
                Coupon.code == code,
                Coupon.status == "active",
                Coupon.valid_from <= now,
                Coupon.valid_until > now,
            )
            .values(status="used", used_at=now, used_order_ref=order_ref)
            .returning(Coupon)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        if member_id is not None:
            statement = statement.where(Coupon.member_id == member_id)
        return (await self.session.scalars(statement)).one_or_none()
