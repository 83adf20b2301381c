from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from loyalty_api.http.schemas import ReadModel


class StandingRead(ReadModel):
    rank: int = Field(description="1 + how many members earned more: equal points share a rank (1, 1, 3).")
    member_id: uuid.UUID
    alias: str = Field(description="The card number with all but its last four digits hidden: `••••••4321`.")
    points: int = Field(description="Points earned in the period, less what refunds took back of them.")


class LeaderboardRead(ReadModel):
    period: Literal["week", "month"]
    start: datetime = Field(description="The period's first instant.")
    end: datetime = Field(description="The first instant after the period.")
    items: list[StandingRead] = Field(description="Most points first; ties by member id.")
    next_cursor: str | None
