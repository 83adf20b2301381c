from loyalty_api.errors import Conflict, LoyaltyError, NotFound


class InsufficientPoints(LoyaltyError):
    code = "insufficient_points"
    status = 422
    title = "The member does not have enough available points"


class BelowMinimumRedeem(LoyaltyError):
    code = "below_minimum_redeem"
    status = 422
    title = "Fewer points than the programme's minimum redemption"


class RedeemShareExceeded(LoyaltyError):
    code = "redeem_share_exceeded"
    status = 422
    title = "Points may not pay this large a share of the order"


class CurrencyMismatch(LoyaltyError):
    code = "currency_mismatch"
    status = 422
    title = "The amount's currency is not the programme's currency"


class MemberNotActive(Conflict):
    code = "member_not_active"
    title = "The member is suspended or closed"


class OrderAlreadyEarned(Conflict):
    code = "order_already_earned"
    title = "Points were already earned for this order"


class OrderAlreadyRedeemed(Conflict):
    code = "order_already_redeemed"
    title = "Points were already redeemed for this order"


class OrderBelongsToAnotherMember(Conflict):
    code = "order_belongs_to_another_member"
    title = "This order reference is used by another member"


class OrderNotFound(NotFound):
    code = "order_not_found"
    title = "No points were earned or redeemed for this order"


class RefundExceedsOrder(LoyaltyError):
    code = "refund_exceeds_order"
    status = 422
    title = "The refund is larger than what is left of the order"


class OrderTotalUnknown(LoyaltyError):
    code = "order_total_unknown"
    status = 422
    title = "The order's total is not known, so a share of it cannot be refunded"


class HoldNotFound(NotFound):
    code = "hold_not_found"
    title = "No such hold"


class HoldNotActive(Conflict):
    code = "hold_not_active"
    title = "The hold was already captured, released or has expired"


class HoldExists(Conflict):
    code = "hold_exists"
    title = "An active hold for this order already exists"


class CaptureExceedsHold(LoyaltyError):
    code = "capture_exceeds_hold"
    status = 422
    title = "Cannot capture more points than the hold reserves"
