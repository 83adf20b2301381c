"""The event base class and the catalogue of every event type.

A payload class is the single source for what the outbox stores, the webhook body's `data`, the
`/v1/event-types` listing and its JSON schema. Payloads carry ids and facts, never personal data: a receiver
that needs a phone number asks the API with its own key.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from loyalty_api.clock import UtcInstant

CATALOGUE: dict[str, type[Event]] = {}


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    description: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        event_type = cls.__dict__.get("event_type")
        if event_type is not None:
            if event_type in CATALOGUE:
                raise TypeError(f"event type {event_type!r} is defined twice")
            CATALOGUE[event_type] = cls


class MoneyPayload(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: int
    currency: str


class TierPayload(BaseModel):
    """A tier as every payload shows one, and as REST replies and GraphQL do: its code, name and rank."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    code: str
    name: str
    rank: int


class WebhookEndpointDisabled(Event):
    event_type = "webhook_endpoint.disabled"
    description = "A webhook endpoint failed every attempt for too long and was disabled until re-enabled."

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
