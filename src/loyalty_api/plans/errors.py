from loyalty_api.errors import Conflict


class PlanExists(Conflict):
    """A plan with this code exists already, so nothing was created.

    Choose another code, or change the existing plan with `PUT /v1/plans/{code}`.
    """

    code = "plan_exists"
    title = "A plan with this code already exists"


class PlanInUse(Conflict):
    """Subscriptions refer to this plan, so it cannot be deleted.

    Deactivate it instead (`PUT /v1/plans/{code}` with `active` false): it is no longer sold, and the
    subscriptions to it keep running.
    """

    code = "plan_in_use"
    title = "Subscriptions refer to this plan: deactivate it instead"
