from __future__ import annotations

import uuid
from typing import Literal

from loyalty_api.outbox.events import Event


class EarningRuleChanged(Event):
    event_type = "earning_rule.changed"
    description = "An operator created, replaced or deleted an earning rule."

    rule_id: uuid.UUID
    name: str
    kind: str
    change: Literal["created", "replaced", "deleted"]
