from loyalty_api.errors import Conflict, LoyaltyError, NotFound


class WebhookEndpointNotFound(NotFound):
    """No webhook endpoint has this id.

    Check the id against `GET /v1/webhook-endpoints`.
    """

    code = "webhook_endpoint_not_found"
    title = "No such webhook endpoint"


class WebhookDeliveryNotFound(NotFound):
    """No webhook delivery has this id.

    Check the id against the endpoint's deliveries, `GET /v1/webhook-endpoints/{id}/deliveries`.
    """

    code = "webhook_delivery_not_found"
    title = "No such webhook delivery"


class DeliveryInFlight(Conflict):
    """A worker is sending this delivery right now, so it cannot be queued again; nothing was changed.

    Wait for the attempt to finish (`GET /v1/webhook-deliveries/{id}` shows it), then retry if it is still
    needed.
    """

    code = "webhook_delivery_in_flight"
    final = False
    title = "A worker is sending this delivery right now: wait for the attempt to finish and try again"


class EndpointDisabled(Conflict):
    """The delivery's endpoint is disabled (by an operator, or after failing for too long), so nothing is
    sent to it; nothing was changed.

    Enable it first (`PATCH /v1/webhook-endpoints/{id}` with `enabled: true`), then retry or replay.
    """

    code = "webhook_endpoint_disabled"
    # Nothing ran, and what refused it is a switch the operator turns back: the page says to enable the
    # endpoint and send again, so the same request with the same Idempotency-Key must then run, not be
    # answered this 409 for 24 hours.
    final = False
    title = "The webhook endpoint is disabled: enable it, then send again"


class EventTypeNotTaken(Conflict):
    """The delivery's event type is no longer among its endpoint's `event_types` (an operator took it out
    since the delivery was made), so it is not sent again, as a replay would not send it; nothing was
    changed.

    To send it anyway, add the type back to the endpoint (`PATCH /v1/webhook-endpoints/{id}`), then retry.
    """

    code = "webhook_event_type_not_taken"
    # As for a disabled endpoint: the operator can take the type again, and the same request with the same
    # Idempotency-Key must then run.
    final = False
    title = "The webhook endpoint no longer takes this event type: add it back, then send again"


class TargetNotAllowed(LoyaltyError):
    """The webhook URL is refused: it is not an http or https URL naming a host, it holds a user name or
    password, it is longer than 2,000 characters, or its host resolves to a private, loopback or other
    internal address. `errors` says which.

    Give the public http(s) URL of the receiver.
    """

    # The rules are in loyalty_api.webhooks.targets.

    code = "webhook_target_not_allowed"
    status = 422
    title = "The webhook URL is not allowed"
    # A refusal of the input (the `url`, as `errors` names it), as `validation_error` is: the request never
    # ran, and its Idempotency-Key stays free for the corrected request, or for the same one once a name
    # server that failed for a moment (TargetUnresolvable) answers again.
    final = False

    def __init__(self, message: str) -> None:
        super().__init__(
            f"url: {message}", errors=[{"field": "url", "message": message, "type": "value_error"}]
        )


class TargetUnresolvable(TargetNotAllowed):
    """The webhook URL's host name does not resolve to any address.

    Check the host name for typos and that its DNS records exist, then save the endpoint again.
    """

    # A subclass, so `except TargetNotAllowed` catches it too.

    code = "webhook_target_unresolvable"
    title = "The webhook URL's host does not resolve"
