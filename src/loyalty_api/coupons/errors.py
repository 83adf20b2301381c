from loyalty_api.errors import Conflict, LoyaltyError, NotFound


class CouponNotFound(NotFound):
    code = "coupon_not_found"
    title = "No such coupon"


class CouponAlreadyUsed(Conflict):
    code = "coupon_already_used"
    title = "The coupon has already been used"


class CouponExpired(LoyaltyError):
    code = "coupon_expired"
    status = 410
    title = "The coupon has expired"


class CouponNotYetValid(LoyaltyError):
    code = "coupon_not_yet_valid"
    status = 422
    title = "The coupon is not valid yet"
