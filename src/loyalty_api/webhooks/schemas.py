from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loyalty_api.http.schemas import Instant, ReadModel, sent_or_left_out
from loyalty_api.webhooks.catalogue import EventType
from loyalty_api.webhooks.delivery import BACKOFF, PROBE_CAP, PROBE_CAP_LATER, PROBE_MIN, RETRY_AFTER_CAP
from loyalty_api.webhooks.endpoints import MAX_EVENT_TYPES, MAX_OVERLAP_HOURS, Endpoint, IssuedSecret
from loyalty_api.webhooks.targets import MAX_URL_LENGTH

DeliveryStatus = Literal["pending", "succeeded", "failed"]
TargetUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="An http(s) URL without credentials; its host must resolve to public addresses.",
        examples=["https://pos.example.com/loyalty/webhooks"],
    ),
]
EventTypeName = Annotated[str, Field(min_length=1, max_length=64, examples=["points.earned"])]
EventTypes = Annotated[
    list[EventTypeName],
    Field(
        max_length=MAX_EVENT_TYPES,
        description="Event types to send (see GET /v1/event-types); empty: every type, new ones included.",
    ),
]
Description = Annotated[str, Field(max_length=200)]


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: TargetUrl
    description: Description | None = None
    event_types: EventTypes = Field(default_factory=list)
    enabled: bool = True
    partner_id: uuid.UUID | None = Field(
        default=None,
        description="A partner's endpoint: it receives only events about that partner (its links and "
        "exchanges), never the programme's others. Set when the endpoint is made; null: ours, every event.",
    )


class WebhookEndpointUpdate(BaseModel):
    """Fields not sent are left alone; `description` sent as null is cleared."""

    model_config = ConfigDict(extra="forbid")

    url: TargetUrl | None = sent_or_left_out()
    description: Description | None = None
    event_types: EventTypes | None = sent_or_left_out()
    enabled: bool | None = sent_or_left_out(
        description="true re-enables a disabled endpoint and forgets its failures"
    )

    @field_validator("url", "event_types", "enabled")
    @classmethod
    def _not_cleared(cls, value: object) -> object:
        # Only runs for values sent: these have no "cleared" state.
        if value is None:
            raise ValueError("cannot be null")
        return value


class SecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_hours: int = Field(
        default=24,
        strict=True,
        ge=0,
        le=MAX_OVERLAP_HOURS,
        description="How long the replaced secret keeps signing beside the new one (0: stops at once).",
    )


class Replay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: Instant = Field(description="Every event that occurred at or after this instant is sent again.")


class WebhookEndpointRead(BaseModel):
    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str] = Field(description="Empty: every event type.")
    partner_id: uuid.UUID | None = Field(description="Whose endpoint: a partner's gets its own events only.")
    enabled: bool
    previous_secret_until: datetime | None = Field(
        description="Until then the secret replaced by the last rotation signs too."
    )
    failing_since: datetime | None = Field(
        description="Since when it has failed every attempt: the first failed attempt since the last "
        "success, moved on by any stretch in which nobody tried it (the worker was stopped, or none of its "
        "deliveries was left to try it with), which does not count towards disabling it."
    )
    next_probe_at: datetime | None = Field(
        description="While the endpoint fails (and is enabled), its deliveries wait and one probe at a time "
        "tries it: the earliest the next probe goes out. After a refused one, that is a quarter of the time "
        f"the endpoint has been failing, from {PROBE_MIN.seconds} s up to {PROBE_CAP.seconds} s in the first "
        f"hour and up to {PROBE_CAP_LATER.seconds // 60} min after, or later when its receiver's 429 or 503 "
        f"asked us to wait (Retry-After, up to {RETRY_AFTER_CAP.days * 24} h); while a probe is out, when "
        "another goes should its outcome never come back. Null when it is not failing, is disabled, or has "
        "nothing waiting to probe with (the next event for it then goes out at once as its probe)."
    )
    disabled_reason: str | None = Field(
        description="Why the worker disabled it: it failed every attempt, tried all along, for "
        "`LOYALTY_WEBHOOK_DISABLE_AFTER_HOURS` (120), or its receiver answered 410 Gone (the URL is removed "
        "for good: disabled at once, not retried). Null once it is enabled again."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, endpoint: Endpoint) -> WebhookEndpointRead:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            description=endpoint.description,
            event_types=endpoint.event_types,
            partner_id=endpoint.partner_id,
            enabled=endpoint.enabled,
            previous_secret_until=endpoint.previous_secret_until,
            failing_since=endpoint.failing_since,
            next_probe_at=endpoint.next_probe_at,
            disabled_reason=endpoint.disabled_reason,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
        )


class WebhookEndpointWithSecret(WebhookEndpointRead):
    secret: str = Field(
        description="The signing secret (Standard Webhooks `whsec_…`). Shown only now: store it.",
    )

    @classmethod
    def issued(cls, issued: IssuedSecret) -> WebhookEndpointWithSecret:
        return cls(**WebhookEndpointRead.of(issued.endpoint).model_dump(), secret=issued.secret)


class WebhookEndpointPage(BaseModel):
    items: list[WebhookEndpointRead]
    next_cursor: str | None


class WebhookDeliveryRead(ReadModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID = Field(description="Also the `webhook-id` header: the same on every attempt.")
    event_type: str
    status: DeliveryStatus
    attempts: int = Field(
        description=f"The attempts that count towards giving up (after the {len(BACKOFF) + 1}th failure): "
        "each made when its back-off schedule was due, and the one that delivered it, since it was made or "
        "since a retry or replay by hand started it afresh. Sends ahead of its schedule that failed (a probe "
        "of its failing endpoint, or a send released by the endpoint's recovery) and an outcome recorded "
        "after its lease was lost do not count. `attempt_log` lists every attempt."
    )
    next_attempt_at: datetime = Field(
        description="Pending: when its back-off schedule makes it due (at once, for a new, retried or "
        "replayed one). It may go out later, and the time may be past while it waits: behind an earlier "
        "pending event of the same member to this endpoint; while the endpoint fails (its `failing_since` is "
        "set), when its deliveries wait for the one probe at a time that tries it (its `next_probe_at`) and "
        "all go out as soon as one is answered; or while the endpoint is disabled, until it is enabled. "
        "Succeeded or failed: when it was settled."
    )
    leased_until: datetime | None = Field(description="A worker is sending it until then.")
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDeliveryRead]
    next_cursor: str | None


class WebhookAttemptRead(ReadModel):
    attempted_at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status; null when none came back.")
    error: str | None
    duration_ms: int
    response_body: str | None = Field(
        description="The start of the receiver's response body, as far as it could be read within the "
        "timeout. Only a record: the status decides (any 2xx is a success, whatever the body)."
    )


class WebhookDeliveryDetail(WebhookDeliveryRead):
    attempt_log: list[WebhookAttemptRead] = Field(description="The latest 100 attempts, oldest first.")


class ReplayResult(BaseModel):
    deliveries: int = Field(description="How many deliveries were created or made due again.")


class EventTypeRead(BaseModel):
    type: str
    description: str
    schema_: dict[str, Any] = Field(
        serialization_alias="schema", description="JSON Schema of the payload (the webhook body's `data`)."
    )

    @classmethod
    def of(cls, event_type: EventType) -> EventTypeRead:
        return cls(type=event_type.type, description=event_type.description, schema_=event_type.schema)


class EventTypeList(BaseModel):
    items: list[EventTypeRead]
    next_cursor: str | None
