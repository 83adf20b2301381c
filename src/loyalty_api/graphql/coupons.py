"""Coupons in GraphQL."""

from __future__ import annotations

import strawberry


@strawberry.type
class MemberCouponFields:
    """Member's coupon fields (Member inherits them)."""
