from loyalty_api.errors import Conflict, LoyaltyError, NotFound


class CouponNotFound(NotFound):
    """No coupon has this code, or the coupon belongs to a member other than the `member_id` given.

    Check the code as the customer shows it; `GET /v1/members/{id}/coupons` lists a member's coupons.
    """

    code = "coupon_not_found"
    title = "No such coupon"


class CouponAlreadyUsed(Conflict):
    """The coupon was used on an order already; a coupon is used once.

    Do not apply it; the customer may have another coupon to use.
    """

    code = "coupon_already_used"
    title = "The coupon has already been used"


class CouponUsedOnThisOrder(Conflict):
    """The coupon was used on this very order (`order_ref`) already: a retry whose first answer was lost,
    or the coupon scanned twice for one basket. Nothing was changed.

    Take the earlier use as the outcome: the coupon applies to this order, once.
    """

    code = "coupon_used_on_this_order"
    title = "The coupon was already used on this order"


class CouponExpired(LoyaltyError):
    """The coupon's validity has ended (the detail says when), so it can no longer be used.

    Do not apply it.
    """

    code = "coupon_expired"
    status = 410
    title = "The coupon has expired"


class CouponNotYetValid(LoyaltyError):
    """The coupon's validity has not begun yet (the detail says when).

    Apply it on or after that time.
    """

    code = "coupon_not_yet_valid"
    status = 422
    title = "The coupon is not valid yet"
