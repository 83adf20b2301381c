from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel

from loyalty_api.clock import UtcInstant
from loyalty_api.outbox.events import Event, MoneyPayload
from loyalty_api.points.ledger import RefundKind


class BreakdownPayload(BaseModel):
    rule: str
    kind: str
    points: int


class PointsEarned(Event):
    event_type = "points.earned"
    description = "A member earned points for a purchase."

    member_id: uuid.UUID
    order_ref: str
    points: int
    amount: MoneyPayload
    breakdown: list[BreakdownPayload]
    balance: int


class PointsRedeemed(Event):
    event_type = "points.redeemed"
    description = "A member paid with points."

    member_id: uuid.UUID
    order_ref: str
    points: int
    value: MoneyPayload
    balance: int


class PointsHeld(Event):
    event_type = "points.held"
    description = "Points were reserved for a checkout."

    member_id: uuid.UUID
    hold_id: uuid.UUID
    order_ref: str
    points: int
    expires_at: UtcInstant


class PointsHoldCaptured(Event):
    event_type = "points.hold_captured"
    description = (
        "Reserved points were spent on the order; any rest of the hold was freed. `shortfall_settled`: freed "
        "points that settled the member's shortfalls."
    )

    member_id: uuid.UUID
    hold_id: uuid.UUID
    order_ref: str
    points: int
    released: int
    balance: int
    shortfall_settled: int = 0


class PointsHoldReleased(Event):
    event_type = "points.hold_released"
    description = (
        "Reserved points were freed: the order was cancelled (`released`), the hold expired (`expired`), "
        "or the member was closed (`member_closed`) or erased (`member_erased`). `shortfall_settled`: freed "
        "points that settled the member's shortfalls (points a refund could not take back while they were on "
        "hold)."
    )

    member_id: uuid.UUID
    hold_id: uuid.UUID
    order_ref: str
    points: int
    reason: str
    shortfall_settled: int = 0


class PointsRefunded(Event):
    event_type = "points.refunded"
    description = (
        "An order was refunded: earned points taken back and redeemed points given back. `refunded` is the "
        "share of the order's total this refund covers (zero when the total is not known: see `refunded_by` "
        "and `given_back`). `shortfall_settled`: points given back that settled the member's shortfalls on "
        "earlier refunds. `already_expired`: earned points not taken back because they had expired."
    )

    member_id: uuid.UUID
    order_ref: str
    refunded: MoneyPayload
    taken_back: int
    given_back: int
    shortfall: int
    balance: int
    refunded_by: RefundKind = "amount"
    shortfall_settled: int = 0
    already_expired: int = 0
    order_total: MoneyPayload | None = None


class PointsExpired(Event):
    event_type = "points.expired"
    description = "Points reached the end of their validity."

    member_id: uuid.UUID
    points: int
    balance: int


class ExpiringDayPayload(BaseModel):
    date: str  # YYYY-MM-DD in the programme's time zone
    points: int


class PointsExpiring(Event):
    event_type = "points.expiring"
    description = (
        "Some of a member's points reach their end within the programme's `expiry_reminder_days`: a cue to "
        "tell the member to use them (an hourly job). `points` and `expiring` (by day, in the programme's "
        "time zone) count every point of the member's ending by the end of the month those days reach; "
        "`expires_at` is the first of those ends. Those points are not told of again: the next reminder "
        "comes when points ending in a later month come within the days."
    )

    member_id: uuid.UUID
    points: int
    expires_at: UtcInstant
    expiring: list[ExpiringDayPayload]
    balance: int
    available: int


class PointsAdjusted(Event):
    event_type = "points.adjusted"
    description = "An operator changed a member's points, with a reason."

    member_id: uuid.UUID
    points: int
    reason: str
    balance: int


class ReferralRewarded(Event):
    event_type = "referral.rewarded"
    description = (
        "A referred member's first qualifying purchase gave points: to the member (`role` friend) at once, "
        "then to the member who referred them (`role` referrer)."
    )

    member_id: uuid.UUID  # who got the points
    role: Literal["friend", "referrer"]
    friend_id: uuid.UUID
    referrer_id: uuid.UUID
    order_ref: str
    points: int


class ReferralVoided(Event):
    event_type = "referral.voided"
    description = (
        "A referred member returned their first qualifying purchase within the programme's return window, "
        "leaving it short of the minimum: the referral is void. One event for each side: the friend's "
        "(`role` friend, with the points taken back) and the referrer's (`role` referrer), who gets nothing."
    )

    member_id: uuid.UUID  # whose side this is
    role: Literal["friend", "referrer"]
    friend_id: uuid.UUID
    referrer_id: uuid.UUID
    order_ref: str
    points_taken_back: int  # the friend's referral points taken back (as far as their points went); 0 else


class PointsTransferReversed(Event):
    event_type = "points.transfer_reversed"
    description = (
        "An operator reversed a points transfer: the recipient gave the points back to the sender. One event "
        "for each member, the sender's (`role` sender) and the recipient's (`role` recipient), with the "
        "transfer's `transfer_id`."
    )

    member_id: uuid.UUID  # whose points changed
    role: Literal["sender", "recipient"]
    transfer_id: uuid.UUID
    from_member_id: uuid.UUID  # who sent the transfer (and has its points back)
    to_member_id: uuid.UUID
    points: int
    balance: int  # this member's, after the reversal
    reason: str


class PointsTransferred(Event):
    event_type = "points.transferred"
    description = (
        "A member sent points to another member: one event for each of them, the sender's (`role` sent) and "
        "the recipient's (`role` received), both with the same `transfer_id`."
    )

    member_id: uuid.UUID  # whose points changed: the sender's or the recipient's
    role: Literal["sent", "received"]
    transfer_id: uuid.UUID
    from_member_id: uuid.UUID
    to_member_id: uuid.UUID
    points: int
    balance: int  # the balance of `member_id` after the transfer


class PointsImported(Event):
    event_type = "points.imported"
    description = "A member imported from the programme's previous system brought these points with them."

    member_id: uuid.UUID
    points: int
    balance: int
