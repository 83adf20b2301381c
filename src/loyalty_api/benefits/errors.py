from loyalty_api.errors import NotFound


class BenefitNotFound(NotFound):
    code = "benefit_not_found"
    title = "No such benefit"
