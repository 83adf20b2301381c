"""The webhooks' own events: about endpoints."""

from __future__ import annotations

import uuid
from typing import Literal

from loyalty_api.clock import UtcInstant
from loyalty_api.outbox.events import Event


class WebhookEndpointDisabled(Event):
    event_type = "webhook_endpoint.disabled"
    description = (
        "A webhook endpoint was disabled until re-enabled: it failed every attempt for too long, or its "
        "receiver answered 410 Gone."
    )

    endpoint_id: uuid.UUID
    failing_since: UtcInstant
    reason: str


class WebhookEndpointChanged(Event):
    event_type = "webhook_endpoint.changed"
    description = "An operator created, changed, rotated the secret of, or deleted a webhook endpoint."

    endpoint_id: uuid.UUID
    change: Literal["created", "updated", "secret_rotated", "deleted"]
    enabled: bool
    event_types: list[str]
