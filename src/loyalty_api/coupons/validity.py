"""Whether a coupon can be used at a given instant: one rule for the checkout quote and for using it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

CouponState = Literal["usable", "used", "expired", "not_yet_valid"]
ListedStatus = Literal["active", "used", "expired"]


class CouponDates(Protocol):
    @property
    def status(self) -> str: ...

    @property
    def valid_from(self) -> datetime: ...

    @property
    def valid_until(self) -> datetime: ...


def coupon_state(coupon: CouponDates, now: datetime) -> CouponState:
    """Used wins over expired, expired over not yet valid. Valid from `valid_from` (inclusive) until
    `valid_until` (exclusive): the same condition the UPDATE that uses a coupon checks."""
    if coupon.status != "active":
        return "used"
    if now >= coupon.valid_until:
        return "expired"
    if now < coupon.valid_from:
        return "not_yet_valid"
    return "usable"


def listed_status(coupon: CouponDates, now: datetime) -> ListedStatus:
    """The status a member's coupon list shows: a coupon not yet valid counts as active."""
    state = coupon_state(coupon, now)
    if state in ("used", "expired"):
        return state
    return "active"
