from loyalty_api.errors import NotFound


class PlanNotFound(NotFound):
    """No plan has this code.

    Check the code against `GET /v1/plans`.
    """

    code = "plan_not_found"
    title = "No such plan"
