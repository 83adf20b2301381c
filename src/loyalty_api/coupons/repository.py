"""All queries of coupons."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal, cast

from sqlalchemy import BindParameter, Select, Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.coupons.models import Coupon
from loyalty_api.db.direct import DirectStatement
from loyalty_api.members.models import Member, not_erased

ListFilter = Literal["active", "used", "expired"]

_COUPONS = cast(Table, Coupon.__table__)


@dataclass(frozen=True, slots=True)
class CouponRecord:
    """A coupon as read for a checkout: the columns, without the ORM's identity map."""

    id: uuid.UUID
    code: str
    member_id: uuid.UUID
    name: str
    kind: str
    properties: dict[str, Any]
    status: str
    valid_from: datetime
    valid_until: datetime
    used_at: datetime | None
    used_order_ref: str | None
    source_type: str
    source_id: uuid.UUID | None
    created_at: datetime


_RECORD_COLUMNS = [_COUPONS.c[name] for name in CouponRecord.__dataclass_fields__]


@cache
def _member_coupons_by_code(codes: int) -> DirectStatement[Select[Any]]:
    """The member's coupons among `codes` codes, one statement per number of codes (a quote names at most
    ten), built once: a checkout quote runs it, and building an IN list each time cost more than running
    it."""
    named: list[BindParameter[str]] = [bindparam(f"code_{i}") for i in range(codes)]
    return DirectStatement(
        select(*_RECORD_COLUMNS).where(
            _COUPONS.c.member_id == bindparam("member_id"), _COUPONS.c.code.in_(named)
        )
    )


class CouponRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def end_member_coupons(self, member_id: uuid.UUID, now: datetime) -> None:
        """The member's unused coupons expire now (an erased member's can no longer be used)."""
        await self.session.execute(
            update(Coupon)
            .where(Coupon.member_id == member_id, Coupon.status == "active", Coupon.valid_until > now)
            .values(valid_until=now)
        )

    async def insert_coupon_if_new(self, values: dict[str, Any]) -> Coupon | None:
        """INSERT … ON CONFLICT DO NOTHING: None when the code or the issue key is taken already."""
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        statement = dialect.insert(Coupon).values(values).on_conflict_do_nothing().returning(Coupon)
        return (await self.session.scalars(statement)).one_or_none()

    async def insert_coupons(self, rows: Sequence[dict[str, Any]]) -> None:
        """Many coupons in one statement (the driver's executemany). A taken code or issue key fails it
        whole: the caller's transaction is then rolled back and may be tried again."""
        if rows:
            await self.session.execute(insert(_COUPONS), list(rows))

    async def get_coupon_by_code(self, code: str) -> Coupon | None:
        """The coupon, unless its member was erased: an erased member is not there, nor is what was theirs."""
        result = await self.session.execute(
            select(Coupon)
            .join(Member, Member.id == Coupon.member_id)
            .where(Coupon.code == code, not_erased())
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def exists_issue_key(self, issue_key: str) -> bool:
        return await self.session.scalar(select(Coupon.id).where(Coupon.issue_key == issue_key)) is not None

    async def list_issue_keys(self, member_ids: Sequence[uuid.UUID], issue_keys: Sequence[str]) -> set[str]:
        """Which of these issue keys these members' coupons have, in one statement through the keys' unique
        index (the members named too: on Citus it runs on their shards alone)."""
        if not member_ids or not issue_keys:
            return set()
        query = select(Coupon.issue_key).where(
            Coupon.member_id.in_(member_ids), Coupon.issue_key.in_(issue_keys)
        )
        return {key for key in (await self.session.scalars(query)).all() if key is not None}

    async def list_member_coupons_by_code(
        self, member_id: uuid.UUID, codes: Sequence[str]
    ) -> list[CouponRecord]:
        if not codes:
            return []
        params = {"member_id": member_id} | {f"code_{i}": code for i, code in enumerate(codes)}
        rows = await _member_coupons_by_code(len(codes)).fetch_all(self.session, params)
        return [CouponRecord(*row) for row in rows]

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

    async def lock_member_of(self, code: str, *, member_id: uuid.UUID | None) -> None:
        """Lock the row of the member whose coupon this is (given `member_id`, only if it is theirs) until
        commit, FOR NO KEY UPDATE as every change to a member takes it; nothing for a code that does not exist
        or an erased member's. A change of the member under way (a suspension, a close, an erasure) is waited
        for."""
        query = (
            select(Member.id)
            .join(Coupon, Coupon.member_id == Member.id)
            .where(Coupon.code == code, not_erased())
            .with_for_update(of=Member, key_share=True)
        )
        if member_id is not None:
            query = query.where(Coupon.member_id == member_id)
        await self.session.execute(query)

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
