from __future__ import annotations

from datetime import datetime

from pydantic import Field

from loyalty_api.http.schemas import ReadModel


class SegmentCountsRead(ReadModel):
    counts: dict[str, int] = Field(
        description="Members per segment (champions, loyal, potential, at_risk, hibernating, "
        "needs_attention, lost), zeros included; closed members, and those the job has not scored yet, are "
        "in none."
    )
    computed_at: datetime | None = Field(
        description="When a member's scores last changed (null: never scored)."
    )
