from loyalty_api.errors import Conflict, LoyaltyError, NotFound


class InsufficientPoints(LoyaltyError):
    """The member's available points (the balance less the points on hold) are fewer than asked for; nothing
    was changed. `available` and `requested` give both numbers.

    Ask for at most `available` points, or let the customer pay the rest another way.
    """

    code = "insufficient_points"
    status = 422
    title = "The member does not have enough available points"


class BelowMinimumRedeem(LoyaltyError):
    """The programme sets a minimum number of points per redemption, and this asks for fewer; nothing was
    changed.

    Redeem at least the minimum the detail gives (`GET /v1/program` shows it too), or none.
    """

    code = "below_minimum_redeem"
    status = 422
    title = "Fewer points than the programme's minimum redemption"


class RedeemShareExceeded(LoyaltyError):
    """The points' value would pay a larger share of `order_total` than the programme allows (`max_share`);
    nothing was changed.

    Redeem fewer points, so that their value stays within that share of the order.
    """

    code = "redeem_share_exceeded"
    status = 422
    title = "Points may not pay this large a share of the order"


class CurrencyMismatch(LoyaltyError):
    """An amount is in another currency than the programme's (for a refund: the order's); nothing was changed.

    Send the amounts in the currency the detail names, in its minor units.
    """

    code = "currency_mismatch"
    status = 422
    title = "The amount's currency is not the programme's currency"


class OrderAlreadyEarned(Conflict):
    """Points were earned for this `order_ref` already; an order earns once, with or without an
    Idempotency-Key, so nothing was added.

    Take the earlier earn as the outcome (the member's ledger shows it); a different purchase needs an
    `order_ref` of its own.
    """

    code = "order_already_earned"
    title = "Points were already earned for this order"


class OrderAlreadyRedeemed(Conflict):
    """Points were redeemed for this `order_ref` already; an order is paid with points once, so nothing was
    taken.

    Take the earlier redemption as the outcome; a different purchase needs an `order_ref` of its own.
    """

    code = "order_already_redeemed"
    title = "Points were already redeemed for this order"


class OrderBelongsToAnotherMember(Conflict):
    """Points were already earned, redeemed or held for this `order_ref` by another member; an order belongs
    to one member, so nothing was changed. (A hold alone binds the order while it lasts: once released or
    expired, with nothing earned, redeemed or refunded, the order is free again.)

    Check that the order reference and the member are the right ones.
    """

    code = "order_belongs_to_another_member"
    title = "This order reference is used by another member"


class OrderRefunded(Conflict):
    """The order has had a refund, in part or in full, and a refunded order takes no new points: no earn,
    redeem, hold or capture for this `order_ref`. Refunds measure the points they move against everything
    the order earned and redeemed, so points added after a refund would be taken or given back out of
    proportion. Nothing was changed.

    Record the new purchase or payment under an `order_ref` of its own; release a hold on this order that can
    no longer be captured.
    """

    code = "order_refunded"
    title = "The order was refunded, so it takes no new points"


class OrderNotFound(NotFound):
    """No points were ever earned, redeemed or held for this `order_ref`, so there is nothing to refund (or
    the order's member was erased: what was theirs is not found).

    Check the order reference; an order that never touched points needs no refund here.
    """

    code = "order_not_found"
    title = "No points were earned or redeemed for this order"


class RefundExceedsOrder(LoyaltyError):
    """The refund is larger than what is left of the order after earlier refunds: `refundable` says how much
    money is left (refunds by `amount`; minor units of the order's currency, as `detail` says),
    `refundable_points` how many redeemed points are left to give back (refunds by `points`). Nothing was
    changed.

    Refund at most what is left, or send `{"full": true}` to refund all of it.
    """

    code = "refund_exceeds_order"
    status = 422
    title = "The refund is larger than what is left of the order"


class OrderTotalUnknown(LoyaltyError):
    """A refund by `amount` of an order whose total was never given (points were redeemed or a hold captured
    for it without an `order_total`), so the share of it an amount stands for cannot be worked out; nothing
    was changed. `refund_with` names the refunds the order takes, `refundable_points` how many points it can
    still give back.

    Refund it by `points` (up to `refundable_points`) or in full (`{"full": true}`). To refund future orders
    by amount, send `order_total` with the redeem or the hold's capture.
    """

    code = "order_total_unknown"
    status = 422
    title = "The order's total is not known, so a share of it cannot be refunded"


class HoldNotFound(NotFound):
    """No hold has this id.

    Check the `id` returned when the hold was made (`POST /v1/members/{id}/holds`).
    """

    code = "hold_not_found"
    title = "No such hold"


class HoldNotActive(Conflict):
    """The hold was captured or released already, or its time ran out, so it reserves no points any more;
    `hold_status`, where known, says which. Nothing was changed.

    Read the hold (`GET /v1/holds/{id}`); to use points for the order now, make a new hold or redeem.
    """

    code = "hold_not_active"
    title = "The hold was already captured, released or has expired"


class HoldExists(Conflict):
    """The member has an active hold for this `order_ref` already (`hold_id` names it); nothing was reserved
    or spent. A hold or a redeem sent again without a key, after a first one that held the points, is
    answered so too.

    Capture that hold (`POST /v1/holds/{hold_id}/capture`) or release it (`…/release`), or go on using it.
    """

    code = "hold_exists"
    title = "An active hold for this order already exists"


class CaptureExceedsHold(LoyaltyError):
    """The capture asks for more points than the hold reserves (`held`); nothing was changed.

    Capture at most `held` points, or leave `points` out to capture them all; what a capture leaves is
    released.
    """

    code = "capture_exceeds_hold"
    status = 422
    title = "Cannot capture more points than the hold reserves"


class TransfersNotOffered(Conflict):
    """The programme does not let members send points to one another. Nothing changed.

    An operator allows it with `transfers_enabled` in `PUT /v1/program`.
    """

    code = "transfers_not_offered"
    title = "Members may not transfer points in this programme"


class TransferNotFound(NotFound):
    """The member sent no points transfer with this id (or one of its members was erased).

    Check the `transfer_id` the transfer answered with, and that the path names the member who sent it.
    """

    code = "transfer_not_found"
    title = "The member sent no such transfer"


class TransferAlreadyReversed(Conflict):
    """The transfer was reversed already: its points went back to the sender then. Nothing changed.

    Read both members' ledgers (the reversal's entries name the transfer's `transfer_id`).
    """

    code = "transfer_already_reversed"
    title = "The transfer was reversed already"


class TransferExpired(Conflict):
    """Every point the transfer moved has passed the end it had: they would have expired with the sender
    too, so there is nothing to give back. Nothing changed.

    Nothing to do for the transfer; to make good points the member lost, an operator adds an adjustment.
    """

    code = "transfer_expired"
    title = "The transfer's points have all passed their end"


class TransferLimitExceeded(LoyaltyError):
    """The transfer would take the points the member sent today past the programme's
    `transfer_daily_limit` (`limit`, `used` and `requested` give the figures). Nothing changed.

    Send at most `limit - used` points today, or try again tomorrow (days in the programme's time zone) with
    a new Idempotency-Key: a key gives back the refusal it was first given.
    """

    code = "transfer_limit_exceeded"
    status = 422
    title = "The member's points transfers for today would pass the programme's daily limit"


class PointsInReturnWindow(LoyaltyError):
    """The transfer asks for points that purchases within the programme's return window earned: a purchase
    may still be returned then, and its points must still be there to take back (`available`,
    `transferable`, `requested` and `return_window_days` give the figures). Nothing changed.

    Send at most `transferable` points now; the rest may be sent once the purchases that earned them are
    `return_window_days` old.
    """

    code = "points_in_return_window"
    status = 422
    title = "Points earned within the return window cannot be sent yet"
