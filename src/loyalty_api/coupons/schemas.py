from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from loyalty_api.coupons.service import MemberCoupon
from loyalty_api.coupons.validity import ListedStatus
from loyalty_api.http.schemas import OrderRef
from loyalty_api.offers import CouponKind


class CouponSourceRead(BaseModel):
    type: str = Field(description="What gave the coupon: `reward`, `birthday_gift`, …")
    id: uuid.UUID | None = Field(description="The reward, benefit, … it came from")


class CouponRead(BaseModel):
    id: uuid.UUID
    code: str = Field(description="What the member shows or types at checkout, e.g. `7KQM-X3RD-9VHT-PZ2C`")
    member_id: uuid.UUID
    name: str
    kind: CouponKind
    properties: dict[str, Any] = Field(
        description="The offer's settings (see the benefit kinds); money in minor units of `currency`"
    )
    currency: str = Field(description="The programme's currency, which money amounts in `properties` are in")
    status: ListedStatus = Field(
        description="`active` (not used and not past `valid_until`; it may not be valid yet), `used`, "
        "or `expired`"
    )
    valid_from: datetime
    valid_until: datetime = Field(description="Usable before this instant")
    used_at: datetime | None
    used_order_ref: str | None
    source: CouponSourceRead
    created_at: datetime

    @classmethod
    def of(cls, shown: MemberCoupon) -> CouponRead:
        coupon = shown.coupon
        return cls(
            id=coupon.id,
            code=coupon.code,
            member_id=coupon.member_id,
            name=coupon.name,
            kind=cast(CouponKind, coupon.offer.kind),
            properties=coupon.offer.model_dump(mode="json", exclude={"kind"}),
            currency=shown.currency,
            status=shown.status,
            valid_from=coupon.valid_from,
            valid_until=coupon.valid_until,
            used_at=coupon.used_at,
            used_order_ref=coupon.used_order_ref,
            source=CouponSourceRead(type=coupon.source_type, id=coupon.source_id),
            created_at=coupon.created_at,
        )


class CouponPage(BaseModel):
    items: list[CouponRead]
    next_cursor: str | None


class CouponUse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_ref: OrderRef = Field(description="The order the coupon is used on")
    member_id: uuid.UUID | None = Field(
        default=None,
        description="The member using it. Required with an ecommerce key: another member's coupon is then "
        "`coupon_not_found`. A pos or admin key may leave it out.",
    )
