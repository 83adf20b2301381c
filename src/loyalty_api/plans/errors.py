from loyalty_api.errors import Conflict, NotFound


class PlanNotFound(NotFound):
    code = "plan_not_found"
    title = "No such plan"


class PlanExists(Conflict):
    code = "plan_exists"
    title = "A plan with this code already exists"


class PlanInUse(Conflict):
    code = "plan_in_use"
    title = "Subscriptions refer to this plan: deactivate it instead"
