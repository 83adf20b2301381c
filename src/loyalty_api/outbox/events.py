"""The event base class, the payload parts events share, and the registry of every event type.

A payload class is the single source for what the outbox stores, the webhook body's `data`, the
`/v1/event-types` listing and its JSON schema. Payloads carry ids and facts, never personal data: a receiver
that needs a phone number asks the API with its own key.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

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
