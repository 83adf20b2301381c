from __future__ import annotations

import uuid
from typing import Literal

from loyalty_api.clock import UtcInstant
from loyalty_api.outbox.events import Event
from loyalty_api.points.events import BreakdownPayload


class ActivityRecorded(Event):
    event_type = "activity.recorded"
    description = (
        "A member was rewarded for an activity (a check-in, a review, …): the rule's points, and a streak "
        "bonus when the activity completed one, one `breakdown` line each."
    )

    member_id: uuid.UUID
    activity_id: uuid.UUID
    type: str
    ref: str
    points: int
    breakdown: list[BreakdownPayload]
    streak: int
    balance: int


class ActivityRuleChanged(Event):
    event_type = "activity_rule.changed"
    description = (
        "An operator created or changed an activity rule (switching it off, or changing its window, "
        "included). The rule is in force while `active` and within `valid_from`..`valid_until` (null: no "
        "bound)."
    )

    rule_id: uuid.UUID
    type: str
    active: bool
    valid_from: UtcInstant | None
    valid_until: UtcInstant | None
    change: Literal["created", "updated"]
