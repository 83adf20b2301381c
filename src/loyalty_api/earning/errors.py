from loyalty_api.errors import NotFound


class EarningRuleNotFound(NotFound):
    code = "earning_rule_not_found"
    title = "No such earning rule"
