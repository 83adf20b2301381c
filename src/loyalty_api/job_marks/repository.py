"""All queries of the jobs' marks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.db.dialect import dialect_insert
from loyalty_api.job_marks.models import JobMark


class JobMarkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_reached(self, job: str) -> datetime | None:
        """Where the job's last complete run started (None: it never completed one)."""
        return await self.session.scalar(select(JobMark.reached_at).where(JobMark.job == job))

    async def set_reached(self, job: str, at: datetime) -> None:
        """The job has looked as far as `at`; a mark further on stays (a run that started earlier and ended
        later, or a clock stepped back, never moves it back), in one statement."""
        statement = dialect_insert(self.session, JobMark.__table__).values(job=job, reached_at=at)
        statement = statement.on_conflict_do_update(
            index_elements=[JobMark.job],
            set_={"reached_at": at},
            where=JobMark.reached_at < at,
        )
        await self.session.execute(statement)
