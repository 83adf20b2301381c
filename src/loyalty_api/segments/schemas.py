from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from loyalty_api.http.schemas import MoneyRead, ReadModel


class SegmentCountsRead(ReadModel):
    counts: dict[str, int] = Field(
        description="Members per segment (champions, loyal, potential, at_risk, hibernating, "
        "needs_attention, lost), zeros included; closed members, and those the job has not scored yet, are "
        "in none."
    )
    computed_at: datetime | None = Field(
        description="When a member's scores last changed (null: never scored)."
    )


class MemberScoresRead(ReadModel):
    recency: int = Field(
        description="1–5 by how recently they bought, 5 the most recent; 0: not in the window."
    )
    frequency: int = Field(description="1–5 by how often they bought in the window.")
    monetary: int = Field(description="1–5 by how much they spent in the window.")
    last_purchase_at: datetime | None
    purchases: int = Field(description="Purchases in the window.")
    spend: MoneyRead = Field(description="Net spend in the window, in the programme's currency.")


class MemberSegmentRead(ReadModel):
    member_id: uuid.UUID
    segment: str | None = Field(
        description="champions, loyal, potential, at_risk, hibernating, needs_attention or lost; null until "
        "the RFM job first scores the member."
    )
    scores: MemberScoresRead | None
    computed_at: datetime | None = Field(description="When the job last changed the member's scores.")
