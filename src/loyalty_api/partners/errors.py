from __future__ import annotations

from loyalty_api.errors import Conflict, LoyaltyError, NotFound


class PartnerNotFound(NotFound):
    """No partner has this code or id.

    Check it against `GET /v1/partners`.
    """

    code = "partner_not_found"
    title = "No such partner"


class PartnerExists(Conflict):
    """A partner already has this code; nothing was created.

    Pick another code, or change the existing partner with `PUT /v1/partners/{code}`.
    """

    code = "partner_exists"
    title = "A partner with this code exists"


class PartnerNotActive(Conflict):
    """The partner is suspended: it cannot be linked to, and its keys reach no member (they may still read,
    confirm or fail the exchanges out pending with it).

    An operator reactivates it with `PUT /v1/partners/{code}` and `"status": "active"`.
    """

    code = "partner_not_active"
    title = "The partner is suspended"


class LinkCodeInvalid(NotFound):
    """The link code is unknown, expired, used already, or was given for another partner. Nothing was
    linked; the four look the same, so a code cannot be probed.

    Ask the member for a new code: the till or shop gets one with `POST /v1/members/{id}/partner-link-codes`.
    """

    code = "link_code_invalid"
    title = "The link code is unknown, expired or used"


class AlreadyLinked(Conflict):
    """The member is linked to this partner already, or the partner's customer reference is linked to
    another member. Nothing was linked.

    Unlink first (`DELETE /v1/partner/links/{ref}`), then link again with a new code.
    """

    code = "already_linked"
    title = "Already linked"


class LinkNotFound(NotFound):
    """The partner has no member linked under this customer reference, or the member has no link to this
    partner. A partner's key never learns anything of members not linked to it.

    Check the reference; link the customer first with `POST /v1/partner/links`.
    """

    code = "link_not_found"
    title = "No such link"


class PartnerEarnNotOffered(Conflict):
    """The partner has no earn rate: purchases there earn nothing in the programme. Nothing was recorded.

    An operator sets `earn_rate` with `PUT /v1/partners/{code}`.
    """

    code = "partner_earn_not_offered"
    title = "Purchases at this partner earn no points"


class ExchangeNotOffered(Conflict):
    """The partner has no exchange rate this way, so points cannot be exchanged with it. Nothing changed.

    An operator sets `exchange_out_rate` or `exchange_in_rate` with `PUT /v1/partners/{code}`.
    """

    code = "exchange_not_offered"
    title = "Points are not exchanged with this partner this way"


class ExchangeLimitExceeded(LoyaltyError):
    """The exchange would take the day's points exchanged past the partner's daily limit, in all or for this
    member (`limit`, `used` and `requested` say which figures). Nothing changed.

    Exchange at most `limit - used` points today, or try again tomorrow (days in the programme's time zone).
    """

    code = "exchange_limit_exceeded"
    status = 422
    title = "The exchange is over the daily limit"


class ExchangeNotFound(NotFound):
    """No exchange of yours has this id. A partner's key never sees another partner's exchanges.

    Use the id from the `partner.exchange_requested` event or from the exchange you sent.
    """

    code = "exchange_not_found"
    title = "No such exchange"


class ExchangeNotPending(Conflict):
    """The exchange is no longer waiting for you: it was confirmed, failed, or its time ran out (and the
    member got the points back). Nothing changed; `exchange_status` says which.

    Read it with `GET /v1/partner/exchanges/{id}`. An exchange out that timed out must not be credited.
    """

    code = "exchange_not_pending"
    title = "The exchange is not pending"


class ExchangeAlreadyRecorded(Conflict):
    """An exchange in with this `partner_ref` was credited already; nothing was credited again.

    Read it with `GET /v1/partner/exchanges/{id}` (`exchange_id` names it).
    """

    code = "exchange_already_recorded"
    title = "This transfer was credited already"


class PerkNotFound(NotFound):
    """None of your perks has this code, or its member was erased since (their perks ended with them). A
    partner's key never sees another partner's perks.

    Check the code the customer showed you; it came to you in `partner.perk_granted`.
    """

    code = "perk_not_found"
    title = "No such perk"


class PerkPoolNotFound(NotFound):
    """No paid plan offers a perk of yours with this code from a pool of codes you upload.

    Ask the operator for the perk's code: the plan names it as `perk` in `partner_perks`, with source `pool`.
    """

    code = "perk_pool_not_found"
    title = "No such perk pool"


class PerkAlreadyRedeemed(Conflict):
    """The perk was redeemed already (`redeemed_at` says when); nothing changed.

    A perk is used once; the member gets a new one with each paid period of the plan.
    """

    code = "perk_already_redeemed"
    title = "The perk was redeemed already"


class NotEntitled(Conflict):
    """The member is not entitled to this joint benefit now: it is not one of yours, or their tier or paid
    plans do not meet your terms. Nothing was recorded.

    Read what they are entitled to in the joint view (`joint_benefits` of `GET /v1/partner/members/{ref}`).
    """

    code = "benefit_not_entitled"
    title = "Not entitled to this joint benefit"


class BenefitUseRecorded(Conflict):
    """A use with this `use_ref` was recorded already; nothing was recorded again.

    Give each use its own reference; a retry of the same use can be ignored.
    """

    code = "benefit_use_already_recorded"
    title = "This use was recorded already"
