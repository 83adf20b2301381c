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
    # Brought over from the programme's previous system (POST /v1/members/import): no newcomer to welcome.
    imported: bool = False


class MemberUpdated(Event):
    event_type = "member.updated"
    description = "A member's profile or status changed; `changed` names the fields, never their values."

    member_id: uuid.UUID
    member_number: str
    status: str
    changed: list[str]


class MemberErased(Event):
    event_type = "member.erased"
    description = (
        "A member's personal data was erased at their request: forget what you hold about `member_id`. Their "
        "points history stays, anonymous. A partner the member was linked to gets one with its own code in "
        "`partner` (its link is gone; `partner.linked` told it the member's id); the programme's own "
        "endpoints receive those copies too, as every event about a member and a partner, so they hear of "
        "one erasure once with `partner` null and once for each partner."
    )

    member_id: uuid.UUID
    partner: str | None
    erased_at: UtcInstant


class MemberLifecycleChanged(Event):
    event_type = "member.lifecycle_changed"
    description = (
        "A member moved to another lifecycle stage: a purchase made them active, or time without one moved "
        "them on (new, active, at_risk, lapsed, churned). `at` is when they reached `stage`. Time moves a "
        "member one stage at a time, each change its own event, in order, even when the worker comes to "
        "several at once (it was down): at_risk then lapsed, never active to lapsed; a change of the "
        "programme's thresholds may move one straight to a stage further on."
    )

    member_id: uuid.UUID
    previous: str
    stage: str
    at: UtcInstant
