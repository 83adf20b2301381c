from __future__ import annotations

import uuid

from loyalty_api.clock import UtcInstant
from loyalty_api.outbox.events import Event, TierPayload


class TierUpgraded(Event):
    event_type = "tier.upgraded"
    description = "A member moved up the ladder: a purchase qualified them, or an operator set their tier."

    member_id: uuid.UUID
    from_tier: TierPayload | None
    to_tier: TierPayload
    reason: str
    kept_until: UtcInstant | None


class TierDowngraded(Event):
    event_type = "tier.downgraded"
    description = "A member moved down the ladder at review, after their window and grace period ended."

    member_id: uuid.UUID
    from_tier: TierPayload | None
    to_tier: TierPayload
    reason: str
    kept_until: UtcInstant | None


class TierReviewDue(Event):
    event_type = "tier.review_due"
    description = (
        "The window that keeps a member's tier ends within the programme's `tier_reminder_days`: a cue to "
        "tell the member what keeping it takes. The figures are what the review at `kept_until` (after the "
        "tier's grace) will judge, as `keep` in GET /v1/members/{id}/tier: `value` bought towards "
        "`threshold` of `metric` from `window_start` to `window_end`, and `remaining` (0: the review keeps "
        "them on the tier). On a rolling window a purchase that brings the last `window_days` to the "
        "threshold renews the tier at once, which may take less than `remaining`. Sent once for each window."
    )

    member_id: uuid.UUID
    tier: TierPayload
    metric: str
    value: int
    threshold: int
    remaining: int
    window_start: UtcInstant
    window_end: UtcInstant
    kept_until: UtcInstant


class TierLadderChanged(Event):
    event_type = "tier_ladder.changed"
    description = "An operator changed the tier ladder; `version` names the new ladder."

    version: int
