from __future__ import annotations

import uuid

from loyalty_api.clock import UtcInstant
from loyalty_api.outbox.events import Event

# No coupon codes here: a code is enough to use the coupon at a till. A receiver that must tell the member
# their code reads it with its own key (GET /v1/members/{id}/coupons).


class CouponIssued(Event):
    event_type = "coupon.issued"
    description = "A member was given a coupon: for a reward bought with points, or as a gift."

    coupon_id: uuid.UUID
    member_id: uuid.UUID
    kind: str
    source_type: str
    source_id: uuid.UUID | None
    valid_from: UtcInstant
    valid_until: UtcInstant


class CouponUsed(Event):
    event_type = "coupon.used"
    description = "A member's coupon was used on an order (a coupon is used once)."

    coupon_id: uuid.UUID
    member_id: uuid.UUID
    kind: str
    order_ref: str
