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


class TierLadderChanged(Event):
    event_type = "tier_ladder.changed"
    description = "An operator changed the tier ladder; `version` names the new ladder."

    version: int
