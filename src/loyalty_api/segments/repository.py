"""The RFM job's statements: every member's scores in one set-based statement, not one per member."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.db.dialect import dialect_insert
from loyalty_api.members.models import Member, MemberRfm, Segment, not_closed
from loyalty_api.orders.models import Order
from loyalty_api.segments.rules import segment_sql

_RFM = cast(Table, MemberRfm.__table__)
_ORDERS = cast(Table, Order.__table__)
_MEMBERS = cast(Table, Member.__table__)
_SCORED = ("recency", "frequency", "monetary", "segment", "last_purchase_at", "purchases", "spend_minor")


def _bought_in(start: datetime, now: datetime) -> Select[Any]:
    """Per member not closed who bought in [start, now): last purchase, purchases, net spend. An erased member
    (not closed before) is scored from their anonymous orders as anyone is, so an erasure moves no one's
    scores or the counts (theirs, nor the others' ranks among the buyers), and they turn lost as anyone does,
    once they have not bought in the window. The members scored are those the counts count."""
    return (
        select(
            _ORDERS.c.member_id,
            func.max(_ORDERS.c.purchased_at).label("last"),
            func.count().label("n"),
            func.sum(_ORDERS.c.amount_minor - _ORDERS.c.refunded_minor).label("spend"),
        )
        .join(_MEMBERS, _MEMBERS.c.id == _ORDERS.c.member_id)
        .where(
            _ORDERS.c.purchased_at >= start,
            _ORDERS.c.purchased_at < now,
            not_closed(),
        )
        .group_by(_ORDERS.c.member_id)
    )


class SegmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def score_members(self, start: datetime, now: datetime) -> int:
        """Score every member not closed who bought in [start, now) (quintiles by last purchase, number of
        purchases and net spend) and put them in their segment, in one statement. A member whose scores and
        figures are what they were is left as it was; how many were written."""
        at = bindparam("now", now, type_=_RFM.c.computed_at.type)
        stats = _bought_in(start, now).subquery("stats")

        def tile(column: Any) -> Any:
            # ⌈5 × rank ÷ buyers⌉ in integers: the same fifths as NTILE(5) for ten buyers, but the top
            # fifth always scores 5 (NTILE gave the one buyer of a new programme 1, and its fewer than
            # five buyers 1 to n, so the most recent of them read as hibernating). Members who bought alike
            # share one rank (by member id, some of them scored 1 and others 5): the middle of the places
            # they hold, (first + last) ÷ 2. The first of them gave eight of ten who bought most often
            # F = 2; the last gave a crowd of one-time buyers F = 4.
            buyers = func.count().over()
            first = func.rank().over(order_by=column)
            last = buyers - func.rank().over(order_by=column.desc()) + 1
            return (5 * (first + last) + 2 * buyers - 1) // (2 * buyers)

        scored = select(
            stats.c.member_id,
            stats.c.last,
            stats.c.n,
            stats.c.spend,
            tile(stats.c.last).label("r"),
            tile(stats.c.n).label("f"),
            tile(stats.c.spend).label("m"),
        ).subquery("scored")
        # WHERE true: SQLite reads an INSERT … SELECT … ON CONFLICT ambiguously without a WHERE.
        source = select(
            scored.c.member_id,
            scored.c.r,
            scored.c.f,
            scored.c.m,
            segment_sql(scored.c.r, scored.c.f),
            scored.c.last,
            scored.c.n,
            scored.c.spend,
            at,
        ).where(true())
        statement = dialect_insert(self.session, _RFM).from_select([*_RFM_COLUMNS], source)
        changed = or_(*(_RFM.c[name].is_distinct_from(statement.excluded[name]) for name in _SCORED))
        statement = statement.on_conflict_do_update(
            index_elements=["member_id"],
            set_={name: statement.excluded[name] for name in (*_SCORED, "computed_at")},
            where=changed,
        )
        result = await self.session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)

    async def mark_lost(self, start: datetime, now: datetime) -> int:
        """Members scored before who did not buy in [start, now) (or are closed now): lost, every score 0;
        how many were not lost yet."""
        bought = _bought_in(start, now).with_only_columns(_ORDERS.c.member_id)
        result = await self.session.execute(
            update(_RFM)
            .where(_RFM.c.segment != Segment.lost.value, _RFM.c.member_id.not_in(bought.scalar_subquery()))
            .values(
                recency=0,
                frequency=0,
                monetary=0,
                segment=Segment.lost.value,
                purchases=0,
                spend_minor=0,
                computed_at=now,
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def get_member_scores(self, member_id: uuid.UUID) -> MemberRfm | None:
        """The member's scores and segment as the last run left them (None: never scored)."""
        return await self.session.get(MemberRfm, member_id)

    async def list_counts(self) -> tuple[dict[str, int], datetime | None]:
        """Members not closed per segment (the analytics overview counts the same), and when the scores were
        last computed."""
        rows = await self.session.execute(
            select(_RFM.c.segment, func.count())
            .join(_MEMBERS, _MEMBERS.c.id == _RFM.c.member_id)
            .where(not_closed())  # one closed and then erased too
            .group_by(_RFM.c.segment)
        )
        counts = {segment: int(n) for segment, n in rows.all()}
        latest = await self.session.scalar(select(func.max(_RFM.c.computed_at)))
        return counts, latest


_RFM_COLUMNS = (
    "member_id",
    "recency",
    "frequency",
    "monetary",
    "segment",
    "last_purchase_at",
    "purchases",
    "spend_minor",
    "computed_at",
)
