from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import column, exists, func, literal, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.db.dialect import insert_or_ignore
from loyalty_api.program.models import PointValueChange, Program

# Where amounts in the programme's currency are recorded: what was bought and earned, prices, discounts,
# spend thresholds, and rates per major unit. Bare tables: the programme sits below the packages that own
# them.
_SPEND_TIERS = table("tiers", column("metric"), column("threshold"))
# A partner's earn rate is points per major unit spent there, as an earning rule's base rate is; its exchange
# rates are points for points, and hold no currency.
_EARNING_PARTNERS = table("partners", column("earn_rate"))
_MONEY = {
    **{
        name: select(literal(1)).select_from(table(name))
        for name in (
            "orders",
            "ledger_entries",
            "plans",
            "coupons",
            # A reward's coupon offer (its amount off, its minimum subtotal), before any coupon is issued.
            "rewards",
            "benefits",
            "earning_rules",
            "campaigns",
        )
    },
    "tiers": select(literal(1)).where(_SPEND_TIERS.c.metric == "spend", _SPEND_TIERS.c.threshold > 0),
    "partners": select(literal(1)).where(_EARNING_PARTNERS.c.earn_rate.is_not(None)),
}


class ProgramRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_program(self) -> Program | None:
        return await self.session.get(Program, 1)

    async def insert_program_if_absent(self, values: dict[str, Any]) -> None:
        """Write the programme's row with `values` unless it is there already (ON CONFLICT DO NOTHING): first
        settings sent at once must not break the primary key. On PostgreSQL one racing another's uncommitted
        row waits for it, then does nothing."""
        await self.session.execute(
            insert_or_ignore(self.session, Program.__table__, ["id"]).values(id=1, **values)
        )

    async def lock_program(self) -> Program | None:
        """The programme's row under lock until commit, read afresh."""
        result = await self.session.execute(
            select(Program).where(Program.id == 1).with_for_update().execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def money_recorded_in(self) -> list[str]:
        """The tables that record amounts in the programme's currency (empty: none yet)."""
        return [name for name, rows in _MONEY.items() if await self.session.scalar(select(exists(rows)))]

    async def last_point_value_change(self) -> datetime | None:
        """When the point value last changed (None: never recorded)."""
        return await self.session.scalar(select(func.max(PointValueChange.effective_at)))

    async def insert_point_value_change(self, effective_at: datetime, point_value_minor: Decimal) -> None:
        self.session.add(PointValueChange(effective_at=effective_at, point_value_minor=point_value_minor))
        await self.session.flush()

    async def point_value_at(self, at: datetime) -> Decimal | None:
        """The point value in force at `at`: the last change by then, or, before the first one recorded, the
        first (none is older than the record); None when none is recorded."""
        latest = await self.session.scalar(
            select(PointValueChange.point_value_minor)
            .where(PointValueChange.effective_at <= at)
            .order_by(PointValueChange.effective_at.desc())
            .limit(1)
        )
        if latest is not None:
            return latest
        return await self.session.scalar(
            select(PointValueChange.point_value_minor).order_by(PointValueChange.effective_at).limit(1)
        )
