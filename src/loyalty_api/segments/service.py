"""RFM segments: the job that scores every member, and what the scores add up to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.members.models import Segment
from loyalty_api.members.service import require_member
from loyalty_api.money import Money
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


@dataclass(frozen=True, slots=True)
class MemberScores:
    """A member's RFM scores (1–5, 5 the best; 0 with no purchase in the window) and segment, as the last run
    of the RFM job left them."""

    recency: int
    frequency: int
    monetary: int
    segment: str
    last_purchase_at: datetime | None
    purchases: int
    spend: Money  # net spend in the window
    computed_at: datetime


async def member_scores(uow: UnitOfWork, member_id: uuid.UUID) -> MemberScores | None:
    """The member's scores (None: the job has not scored them yet); MemberNotFound for no member, or one
    erased."""
    await require_member(uow, member_id, must_be_active=False)
    return await scores_of(uow, member_id)


async def scores_of(uow: UnitOfWork, member_id: uuid.UUID) -> MemberScores | None:
    """`member_scores` of a member known to be there (a privacy export has read them already)."""
    scores = await SegmentRepository(uow.session).get_member_scores(member_id)
    if scores is None:
        return None
    return MemberScores(
        recency=scores.recency,
        frequency=scores.frequency,
        monetary=scores.monetary,
        segment=scores.segment,
        last_purchase_at=scores.last_purchase_at,
        purchases=scores.purchases,
        spend=Money(scores.spend_minor, (await get_program(uow)).currency),
        computed_at=scores.computed_at,
    )
