from __future__ import annotations

import uuid
from typing import Literal

from loyalty_api.outbox.events import Event


class BenefitChanged(Event):
    event_type = "benefit.changed"
    description = "An operator created, replaced or deleted a benefit."

    benefit_id: uuid.UUID
    name: str
    kind: str
    change: Literal["created", "replaced", "deleted"]
