"""REST request and response models for partners and joint membership."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from loyalty_api.http.schemas import ReadModel, TierRef
from loyalty_api.members.models import MemberStatus

PartnerCode = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="The partner's code, e.g. `bookshop`")
]
# The partner's own customer id: any visible ASCII, as partners' systems write ids.
CustomerRef = Annotated[str, Field(pattern=r"^[\x21-\x7e]{1,64}$")]
Grant = Literal["basic", "points"]


class PartnerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: PartnerCode
    name: str = Field(min_length=1, max_length=100)


class PartnerWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    status: Literal["active", "suspended"] = Field(
        description="A suspended partner's keys reach no member, and it cannot be linked to."
    )


class PartnerRead(ReadModel):
    id: uuid.UUID = Field(description="Give it to `loyalty-api keys create --scope partner --partner`.")
    code: str
    name: str
    status: str
    created_at: datetime
    updated_at: datetime


class PartnerPage(ReadModel):
    items: list[PartnerRead]
    next_cursor: str | None


def _basic_only() -> list[Grant]:
    return ["basic"]


class LinkCodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner: PartnerCode
    grants: list[Grant] = Field(
        default_factory=_basic_only,
        max_length=2,
        description="What the member lets the partner see: `basic` (tier, paid membership; always) and "
        "`points` (balance and available points).",
    )


class LinkCodeRead(ReadModel):
    code: str = Field(description="Show it to the member once: they give it to the partner within minutes.")
    partner: str
    grants: list[str]
    expires_at: datetime


class LinkRead(ReadModel):
    partner: str
    partner_name: str
    partner_customer_ref: str
    grants: list[str]
    linked_at: datetime


class LinkPage(ReadModel):
    items: list[LinkRead]
    next_cursor: str | None


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=32, description="The code the member gave you.")
    partner_customer_ref: CustomerRef = Field(
        description="Your id of the customer: the member is read by it."
    )


class PartnerPointsRead(ReadModel):
    balance: int
    available: int


class PartnerMemberRead(ReadModel):
    """A linked member as their partner sees them: never personal data."""

    partner_customer_ref: str
    member_id: uuid.UUID
    status: MemberStatus
    tier: TierRef | None
    paid_plans: list[str] = Field(description="Codes of the paid plans whose benefits the member has now.")
    points: PartnerPointsRead | None = Field(description="Null unless the member granted `points`.")
    grants: list[str]
    linked_at: datetime
