from loyalty_api.errors import Conflict, LoyaltyError, NotFound


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"
    title = "No such webhook endpoint"


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"
    title = "No such webhook delivery"


class DeliveryInFlight(Conflict):
    code = "webhook_delivery_in_flight"
    title = "A worker is sending this delivery right now: wait for the attempt to finish and try again"


class TargetNotAllowed(LoyaltyError):
    """A webhook URL this service refuses to send to (see loyalty_api.webhooks.targets)."""

    code = "webhook_target_not_allowed"
    status = 422
    title = "The webhook URL is not allowed"

    def __init__(self, message: str) -> None:
        super().__init__(
            f"url: {message}", errors=[{"field": "url", "message": message, "type": "value_error"}]
        )


class TargetUnresolvable(TargetNotAllowed):
    """The URL's host has no address; a subclass, so `except TargetNotAllowed` catches it too."""

    code = "webhook_target_unresolvable"
    title = "The webhook URL's host does not resolve"
