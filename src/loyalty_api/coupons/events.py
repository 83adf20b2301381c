from __future__ import annotations

import uuid
from datetime import datetime

from loyalty_api.webhooks.events import Event


class CouponIssued(Event):
    event_type = "coupon.issued"
    description = "A member was given a coupon: for a reward bought with points, or as a gift."

    coupon_id: uuid.UUID
    member_id: uuid.UUID
    code: str
    kind: str
    source_type: str
    source_id: uuid.UUID | None
    valid_from: datetime
    valid_until: datetime


class CouponUsed(Event):
    event_type = "coupon.used"
    description = "A member's coupon was used on an order (a coupon is used once)."

    coupon_id: uuid.UUID
    member_id: uuid.UUID
    code: str
    kind: str
    order_ref: str
