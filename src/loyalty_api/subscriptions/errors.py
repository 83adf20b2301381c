from __future__ import annotations

from loyalty_api.errors import Conflict, LoyaltyError, NotFound


class SubscriptionNotFound(NotFound):
    """No subscription has this id.

    Check the id returned when the member subscribed, or list the member's subscriptions with `GET
    /v1/members/{id}/subscriptions`.
    """

    code = "subscription_not_found"
    title = "No such subscription"


class SubscriptionExists(Conflict):
    """The member already has a subscription in this plan's family that has not expired (a cancelled one can
    still be resumed); `subscription_id`, when present, names it. Nothing was created.

    Change that subscription's plan or resume it, instead of starting another.
    """

    code = "subscription_exists"
    title = "The member already has a live subscription in this plan family"


class TransitionNotAllowed(Conflict):
    """The subscription's current state does not allow this action: cancelling one that has expired, taking a
    payment for a cancelled one. `state` and `action` name both; nothing was changed.

    Read the subscription (`GET /v1/subscriptions/{id}`) and act on the state it is in.
    """

    code = "subscription_transition_not_allowed"
    title = "The subscription's state does not allow this"

    def __init__(self, state: str, action: str) -> None:
        super().__init__(
            f"A {state} subscription cannot {action.replace('_', ' ')}", state=state, action=action
        )


class TrialAlreadyUsed(Conflict):
    """The member has subscribed to this plan family before, so no trial is given again; nothing was created.

    Subscribe with `trial` false and a `payment_ref` for the first period.
    """

    code = "trial_already_used"
    title = "The member has had this plan family before: subscribe with trial false"


class PeriodAlreadyPaid(Conflict):
    """A successful payment for this period is recorded already, or, for a change of plan, the next period is
    paid already at the current plan's price. Nothing was changed.

    Do not charge again; change the plan once the paid period has begun.
    """

    code = "period_already_paid"
    title = "A payment for this period has already succeeded"


class PaymentRefReused(Conflict):
    """This `payment_ref` is recorded for the subscription already, with a different outcome, amount or
    period. (Reporting a payment again with the same values answers as the first time.)

    Give a different payment its own `payment_ref`; to repeat a report, send its original values.
    """

    code = "payment_ref_reused"
    title = "This payment reference was recorded with a different outcome, amount or period"


class PaymentNotDue(LoyaltyError):
    """Payments are taken for the subscription's next period only, and this one is for another; `due_period`
    says which period is due.

    Report the payment for `due_period`.
    """

    code = "payment_not_due"
    status = 422
    title = "Payments are taken for the subscription's next period only"


class PaymentAmountMismatch(LoyaltyError):
    """The amount is not the price due for the period; `expected` gives the amount and currency due.

    Charge and report exactly `expected`.
    """

    code = "payment_amount_mismatch"
    status = 422
    title = "The amount is not the price due for the period"
