from loyalty_api.errors import NotFound


class BenefitNotFound(NotFound):
    """No benefit has this id.

    Check the id against `GET /v1/benefits`.
    """

    code = "benefit_not_found"
    title = "No such benefit"
