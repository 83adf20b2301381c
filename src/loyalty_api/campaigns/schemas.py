from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from loyalty_api.http.schemas import ReadModel
from loyalty_api.members.lifecycle import Stage
from loyalty_api.members.models import Segment
from loyalty_api.offers import CouponOffer
from loyalty_api.text import FilledText

Code = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class AudienceWrite(BaseModel):
    """Who the campaign reaches: active members for whom every filter given holds (none: every active
    member)."""

    model_config = ConfigDict(extra="forbid")

    tier: Code | None = Field(default=None, description="Members on this tier (its code).")
    plan: Code | None = Field(
        default=None,
        description="Members with an active (paid: not in trial, not past due) subscription to this plan "
        "(its code).",
    )
    lifecycle: Stage | None = Field(default=None, description="Members in this lifecycle stage.")
    segment: Segment | None = Field(default=None, description="Members in this RFM segment.")
    birthday_month: int | None = Field(default=None, ge=1, le=12, description="Members born in this month.")


class IssueCouponWrite(BaseModel):
    """Give each member of the audience one single-use coupon (`coupon.issued`, source_type `campaign`)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["issue_coupon"]
    coupon_name: FilledText = Field(max_length=100)
    coupon: CouponOffer
    valid_days: int = Field(
        default=30, ge=1, le=366, description="Each coupon is valid this many days from when it is issued."
    )


class GrantPointsWrite(BaseModel):
    """Credit each member of the audience `points` through the ledger (entry type `campaign`)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["grant_points"]
    points: int = Field(strict=True, ge=1, le=1_000_000)
    reason: FilledText = Field(max_length=200)


ActionWrite = Annotated[IssueCouponWrite | GrantPointsWrite, Field(discriminator="type")]


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[FilledText, StringConstraints(max_length=100, strip_whitespace=True)]
    audience: AudienceWrite = Field(default_factory=AudienceWrite)
    action: ActionWrite


class AudienceRead(ReadModel):
    tier: str | None = Field(description="The tier's code (null: any tier, or the tier was deleted since).")
    plan: str | None = Field(description="The plan's code (null: no plan asked, or it was deleted since).")
    lifecycle: str | None
    segment: str | None
    birthday_month: int | None


class IssueCouponRead(ReadModel):
    type: Literal["issue_coupon"]
    coupon_name: str
    coupon: CouponOffer
    valid_days: int


class GrantPointsRead(ReadModel):
    type: Literal["grant_points"]
    points: int
    reason: str


class CampaignCounts(ReadModel):
    reached: int = Field(description="Members reached so far (the audience size once `completed`).")
    coupons_issued: int
    points_granted: int = Field(description="Points granted in all.")
    purchased_since: int = Field(description="Members reached who bought after the campaign reached them.")


class CampaignRead(ReadModel):
    id: uuid.UUID
    name: str
    status: Literal["pending", "running", "completed", "cancelled"]
    audience: AudienceRead
    action: Annotated[IssueCouponRead | GrantPointsRead, Field(discriminator="type")]
    counts: CampaignCounts
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class CampaignList(ReadModel):
    items: list[CampaignRead]
    next_cursor: str | None


class CampaignMemberRead(ReadModel):
    member_id: uuid.UUID
    outcome: Literal["coupon_issued", "points_granted"]
    reached_at: datetime
    purchased_since: bool = Field(description="The member bought after the campaign reached them.")


class CampaignMemberList(ReadModel):
    items: list[CampaignMemberRead]
    next_cursor: str | None
