"""Every event type the service emits, with the JSON schema of its payload.

Event classes register themselves in `loyalty_api.webhooks.events.CATALOGUE` when their module is imported;
this module imports every domain's `events` module, so the listing is complete whoever asks first. A new
domain with events adds its module below (a test fails until it does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from loyalty_api.activities import events as activity_events
from loyalty_api.benefits import events as benefit_events
from loyalty_api.campaigns import events as campaign_events
from loyalty_api.coupons import events as coupon_events
from loyalty_api.db.pagination import Page, page_after, scope_of
from loyalty_api.earning import events as earning_events
from loyalty_api.members import events as member_events
from loyalty_api.outbox.events import CATALOGUE
from loyalty_api.partners import events as partner_events
from loyalty_api.plans import events as plan_events
from loyalty_api.points import events as points_events
from loyalty_api.program import events as program_events
from loyalty_api.rewards import events as reward_events
from loyalty_api.subscriptions import events as subscription_events
from loyalty_api.tiers import events as tier_events
from loyalty_api.webhooks import events as webhook_events

EVENT_TYPES = scope_of("event_types")  # the catalogue's cursors carry it

EVENT_MODULES = (
    activity_events,
    benefit_events,
    campaign_events,
    coupon_events,
    earning_events,
    member_events,
    partner_events,
    plan_events,
    points_events,
    program_events,
    reward_events,
    subscription_events,
    tier_events,
    webhook_events,
)


@dataclass(frozen=True, slots=True)
class EventType:
    type: str
    description: str
    schema: dict[str, Any]


def is_known(event_type: str) -> bool:
    return event_type in CATALOGUE


def event_types() -> list[EventType]:
    """Every event type, sorted by name, with the schema of its payload (the webhook body's `data`)."""
    return [
        EventType(
            type=name,
            description=event.description,
            schema=event.model_json_schema(mode="serialization"),
        )
        for name, event in sorted(CATALOGUE.items())
    ]


def list_event_types(*, limit: int, cursor: str | None) -> Page[EventType]:
    """The catalogue a page at a time, by name: small and fixed, it still pages like every list."""
    return page_after(
        event_types(), limit=limit, cursor=cursor, key=lambda t: (t.type,), shape=(str,), scope=EVENT_TYPES
    )


def event_types_document() -> str:
    """Every event type as `GET /v1/event-types` lists them (all on one page), as committed in
    openapi/event-types.json."""
    items = [{"type": t.type, "description": t.description, "schema": t.schema} for t in event_types()]
    return json.dumps({"items": items}, indent=2, ensure_ascii=False) + "\n"
