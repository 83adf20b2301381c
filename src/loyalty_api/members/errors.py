from loyalty_api.errors import Conflict, NotFound


class MemberNotFound(NotFound):
    """No member has this id, card number, phone number, e-mail address or external id.

    Check the identifier, or enrol the customer with `POST /v1/members`. A key whose lookups keep finding no
    one is answered with `rate_limited` for a while.
    """

    code = "member_not_found"
    title = "No such member"


class MemberNotActive(Conflict):
    """The member is suspended or closed, so they cannot earn, redeem or hold points, redeem rewards, use
    coupons, have a partner's perk redeemed, subscribe (nor resume or change a subscription's plan) or get a
    checkout quote; nothing was changed.

    Do not retry; an admin key can make the member active again (`PATCH /v1/members/{id}` with `status`). A
    partner sends its customer to the programme.
    """

    code = "member_not_active"
    title = "The member is suspended or closed"
