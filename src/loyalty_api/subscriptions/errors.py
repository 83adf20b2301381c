from __future__ import annotations

from loyalty_api.errors import Conflict, LoyaltyError, NotFound


class SubscriptionNotFound(NotFound):
    code = "subscription_not_found"
    title = "No such subscription"


class SubscriptionExists(Conflict):
    code = "subscription_exists"
    title = "The member already has a live subscription in this plan family"


class TransitionNotAllowed(Conflict):
    code = "subscription_transition_not_allowed"
    title = "The subscription's state does not allow this"

    def __init__(self, state: str, action: str) -> None:
        super().__init__(
            f"A {state} subscription cannot {action.replace('_', ' ')}", state=state, action=action
        )


class TrialAlreadyUsed(Conflict):
    code = "trial_already_used"
    title = "The member has had this plan family before: subscribe with trial false"


class PeriodAlreadyPaid(Conflict):
    code = "period_already_paid"
    title = "A payment for this period has already succeeded"


class PaymentRefReused(Conflict):
    code = "payment_ref_reused"
    title = "This payment reference was recorded with a different outcome, amount or period"


class PaymentNotDue(LoyaltyError):
    code = "payment_not_due"
    status = 422
    title = "Payments are taken for the subscription's next period only"


class PaymentAmountMismatch(LoyaltyError):
    code = "payment_amount_mismatch"
    status = 422
    title = "The amount is not the price due for the period"
