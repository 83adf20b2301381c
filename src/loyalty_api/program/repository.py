from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.program.models import Program


class ProgramRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_program(self) -> Program | None:
        return await self.session.get(Program, 1)

    async def insert_program(self, program: Program) -> None:
        self.session.add(program)
