from loyalty_api.errors import NotFound


class EarningRuleNotFound(NotFound):
    """No earning rule has this id.

    Check the id against `GET /v1/earning-rules`.
    """

    code = "earning_rule_not_found"
    title = "No such earning rule"
