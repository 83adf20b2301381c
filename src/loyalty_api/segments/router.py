"""RFM segments, for operators."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.http.dependencies import UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.transaction import UnitOfWorkRoute
from loyalty_api.members.errors import MemberNotFound
from loyalty_api.segments import service
from loyalty_api.segments.schemas import MemberScoresRead, MemberSegmentRead, SegmentCountsRead

router = APIRouter(prefix="/v1", tags=["analytics"], route_class=UnitOfWorkRoute)

Operator = Annotated[Principal, Depends(require(Scope.admin))]


@router.get(
    "/segments",
    summary="How many members are in each RFM segment",
    responses=problem_responses(InvalidApiKey, ScopeNotAllowed),
)
async def read_segments(uow: UoW, _: Operator) -> SegmentCountsRead:
    """Members per RFM segment, as the RFM job last scored them: recency, frequency and monetary quintiles
    over the programme's `rfm_window_days`, named by recency and frequency (champions, loyal, potential,
    at_risk, hibernating, needs_attention; lost: no purchase in the window). Closed members count in none.
    List a segment's members with `GET /v1/members?segment=`.

    For `admin` keys only. Reads only."""
    found = await service.segment_counts(uow)
    return SegmentCountsRead(counts=dict(found.counts), computed_at=found.computed_at)


@router.get(
    "/members/{member_id}/segment",
    summary="A member's RFM segment and scores",
    responses=problem_responses(InvalidApiKey, ScopeNotAllowed, MemberNotFound),
)
async def read_member_segment(member_id: uuid.UUID, uow: UoW, _: Operator) -> MemberSegmentRead:
    """The member's RFM segment and the scores behind it, as the RFM job last left them (`segment` and
    `scores` null until it first scores the member); what `GET /v1/segments` counts and `GET
    /v1/members?segment=` filters by.

    For `admin` keys only. Reads only."""
    found = await service.member_scores(uow, member_id)
    if found is None:
        return MemberSegmentRead(member_id=member_id, segment=None, scores=None, computed_at=None)
    return MemberSegmentRead(
        member_id=member_id,
        segment=found.segment,
        scores=MemberScoresRead.model_validate(found, from_attributes=True),
        computed_at=found.computed_at,
    )
