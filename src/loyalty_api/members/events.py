from __future__ import annotations

import uuid

from loyalty_api.clock import UtcInstant
from loyalty_api.outbox.events import Event, TierPayload


class MemberEnrolled(Event):
    event_type = "member.enrolled"
    description = "A member joined the programme."

    member_id: uuid.UUID
    member_number: str
    channel: str
    tier: TierPayload | None
    referred_by: uuid.UUID | None


class MemberUpdated(Event):
    event_type = "member.updated"
    description = "A member's profile or status changed; `changed` names the fields, never their values."

    member_id: uuid.UUID
    member_number: str
    status: str
    changed: list[str]


class MemberLifecycleChanged(Event):
    event_type = "member.lifecycle_changed"
    description = (
        "A member moved to another lifecycle stage: a purchase made them active, or time without one moved "
        "them on (new, active, at_risk, lapsed, churned)."
    )

    member_id: uuid.UUID
    previous: str
    stage: str
    at: UtcInstant
