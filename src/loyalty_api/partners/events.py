from __future__ import annotations

import uuid
from typing import Literal

from loyalty_api.webhooks.events import Event


class PartnerChanged(Event):
    event_type = "partner.changed"
    description = "An operator registered, renamed, suspended or reactivated a partner."

    partner: str
    name: str
    status: str
    change: Literal["created", "replaced"]


class PartnerLinked(Event):
    event_type = "partner.linked"
    description = "A member, having consented with a link code, was linked to a partner's customer."

    member_id: uuid.UUID
    partner: str
    partner_customer_ref: str
    grants: list[str]


class PartnerUnlinked(Event):
    event_type = "partner.unlinked"
    description = "A member's link to a partner ended (by the partner, or by the member on our side)."

    member_id: uuid.UUID
    partner: str
    partner_customer_ref: str
    by: str
