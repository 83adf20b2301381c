from __future__ import annotations

import uuid
from typing import Literal

from loyalty_api.outbox.events import Event, MoneyPayload


class PlanChanged(Event):
    event_type = "plan.changed"
    description = (
        "An operator created, replaced or deleted a paid plan. A new price applies from each subscription's "
        "next period."
    )

    plan_id: uuid.UUID
    code: str
    price: MoneyPayload
    active: bool
    change: Literal["created", "replaced", "deleted"]
