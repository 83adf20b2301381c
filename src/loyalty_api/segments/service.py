"""RFM segments: the job that scores every member, and what the scores add up to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.members.models import Segment
from loyalty_api.program.service import get_program
from loyalty_api.segments.repository import SegmentRepository


async def compute_segments(units: UnitsOfWork) -> int:
    """The RFM job: every member's scores over the programme's window and their segment, in one
    transaction of two set-based statements (the scores of those who bought, then `lost` for those scored
    before who did not). How many members' scores changed: a second run straight after finds nothing to do,
    as `loyalty-api jobs` expects of every job."""
    async with units.begin() as uow:
        now = uow.clock.now()
        start = now - timedelta(days=(await get_program(uow)).rfm_window_days)
        repo = SegmentRepository(uow.session)
        return await repo.score_members(start, now) + await repo.mark_lost(start, now)


@dataclass(frozen=True, slots=True)
class SegmentCounts:
    counts: dict[Segment, int]  # every segment, zeros included
    computed_at: datetime | None  # None: the job has not run yet


async def segment_counts(uow: UnitOfWork) -> SegmentCounts:
    counts, computed_at = await SegmentRepository(uow.session).list_counts()
    return SegmentCounts({segment: counts.get(segment, 0) for segment in Segment}, computed_at)
