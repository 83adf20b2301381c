from __future__ import annotations

from sqlalchemy import column, exists, literal, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.program.models import Program

# Where amounts in the programme's currency are recorded: what was bought and earned, prices, discounts and
# spend thresholds. Bare tables: the programme sits below the packages that own them.
_SPEND_TIERS = table("tiers", column("metric"), column("threshold"))
_MONEY = {
    **{
        name: select(literal(1)).select_from(table(name))
        for name in ("orders", "ledger_entries", "plans", "coupons", "benefits", "earning_rules", "campaigns")
    },
    "tiers": select(literal(1)).where(_SPEND_TIERS.c.metric == "spend", _SPEND_TIERS.c.threshold > 0),
}


class ProgramRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_program(self) -> Program | None:
        return await self.session.get(Program, 1)

    async def insert_program(self, program: Program) -> None:
        self.session.add(program)

    async def money_recorded_in(self) -> list[str]:
        """The tables that record amounts in the programme's currency (empty: none yet)."""
        return [name for name, rows in _MONEY.items() if await self.session.scalar(select(exists(rows)))]
