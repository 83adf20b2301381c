from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from loyalty_api.activities.streaks import CapPeriod, StreakBonus
from loyalty_api.http.schemas import Instant, ReadModel, sent_or_left_out
from loyalty_api.text import FilledText

ActivityType = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_]{0,31}$"),
    Field(description="`check_in`, `review`, `share`, `profile_completed`, or a type of your own."),
]
Cap = Annotated[int, Field(ge=1, le=1_000_000)]
RulePoints = Annotated[int, Field(ge=0, le=1_000_000, description="Points each rewarded activity earns.")]
RuleName = Annotated[FilledText, StringConstraints(max_length=100, strip_whitespace=True)]


class StreakBonusWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(
        ge=2,
        le=366,
        description="Every `days`-th consecutive programme day with the activity earns the bonus.",
    )
    points: int = Field(ge=1, le=1_000_000)

    def bonus(self) -> StreakBonus:
        return StreakBonus(days=self.days, points=self.points)


StreakBonuses = Annotated[list[StreakBonusWrite], Field(max_length=20)]


class ActivityRuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: ActivityType
    name: RuleName
    points: RulePoints
    daily_cap: Cap | None = Field(
        default=None, description="Rewarded activities per programme day at most (null: no cap)."
    )
    period_cap: Cap | None = Field(
        default=None, description="Rewarded activities per `cap_period` at most (null: no cap)."
    )
    cap_period: CapPeriod = Field(
        default=CapPeriod.month,
        description="The period of `period_cap`, in the programme's time zone: a week from Monday, a "
        "calendar month or year, or the member's lifetime.",
    )
    streak_bonuses: StreakBonuses = Field(default_factory=list)
    active: bool = True
    valid_from: Instant | None = Field(
        default=None, description="When the rule comes into force (null: at once)."
    )
    valid_until: Instant | None = Field(
        default=None, description="When it stops being in force, after `valid_from` (null: no end)."
    )


class ActivityRuleUpdate(BaseModel):
    """Fields not sent are left alone; a cap or an end of the window sent as null is lifted. The type cannot
    change."""

    model_config = ConfigDict(extra="forbid")

    name: RuleName | None = sent_or_left_out()
    points: RulePoints | None = sent_or_left_out()
    daily_cap: Cap | None = None
    period_cap: Cap | None = None
    cap_period: CapPeriod | None = sent_or_left_out()
    streak_bonuses: StreakBonuses | None = sent_or_left_out()
    active: bool | None = sent_or_left_out(description="false switches the rule off: activities are refused.")
    valid_from: Instant | None = Field(
        default=None, description="When the rule comes into force; null lifts it (in force at once)."
    )
    valid_until: Instant | None = Field(
        default=None, description="When it stops being in force, after `valid_from`; null lifts it (no end)."
    )

    @field_validator("name", "points", "cap_period", "streak_bonuses", "active")
    @classmethod
    def _not_cleared(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null")
        return value


class StreakBonusRead(ReadModel):
    days: int
    points: int


class ActivityRuleRead(ReadModel):
    id: uuid.UUID
    type: str
    name: str
    points: int
    daily_cap: int | None
    period_cap: int | None
    cap_period: CapPeriod
    streak_bonuses: list[StreakBonusRead]
    active: bool
    valid_from: datetime | None
    valid_until: datetime | None
    created_at: datetime
    updated_at: datetime


class ActivityRuleList(ReadModel):
    items: list[ActivityRuleRead]
    next_cursor: str | None


class ActivityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: ActivityType
    ref: str = Field(
        min_length=1,
        max_length=100,
        description="Your id for this activity (a review's id, a share's, the day of a check-in): the same "
        "ref of the same type is rewarded once.",
    )


class BreakdownLineRead(ReadModel):
    rule: str
    kind: str = Field(description="`activity` (the rule's points) or `streak_bonus`.")
    points: int


class ActivityRead(ReadModel):
    id: uuid.UUID
    member_id: uuid.UUID
    type: str
    ref: str
    rule_id: uuid.UUID
    points_earned: int
    breakdown: list[BreakdownLineRead]
    streak: int = Field(
        description="Consecutive programme days with this type of activity, this one's included."
    )
    day: date = Field(description="The programme day the activity counted on (the programme's time zone).")
    balance: int = Field(description="The member's points balance after the activity's points.")
    recorded_at: datetime
    already_recorded: bool = Field(
        description="True when the ref was rewarded before: this is that first result, and nothing was "
        "earned now (REST also answers 200 instead of 201)."
    )
