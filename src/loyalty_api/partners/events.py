from __future__ import annotations

import uuid
from typing import Literal

from loyalty_api.clock import UtcInstant
from loyalty_api.outbox.events import Event


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


class ExchangeRequested(Event):
    event_type = "partner.exchange_requested"
    description = (
        "A member sent points to their account at a partner: spent here, pending until the partner confirms "
        "or fails it (`POST /v1/partner/exchanges/{id}/confirm|fail`) before `expires_at`."
    )

    exchange_id: uuid.UUID
    member_id: uuid.UUID
    partner: str
    partner_customer_ref: str
    points: int
    partner_points: int
    expires_at: UtcInstant


class ExchangeResolved(Event):
    event_type = "partner.exchange_resolved"
    description = (
        "An exchange out was confirmed by the partner, or failed or timed out, and then the member got the "
        "points back."
    )

    exchange_id: uuid.UUID
    member_id: uuid.UUID
    partner: str
    partner_customer_ref: str
    status: Literal["confirmed", "failed", "expired"]
    points: int
    partner_points: int


class ExchangeReceived(Event):
    event_type = "partner.exchange_received"
    description = "A partner's customer sent points from the partner's programme; the member was credited."

    exchange_id: uuid.UUID
    member_id: uuid.UUID
    partner: str
    partner_customer_ref: str
    partner_ref: str
    points: int
    partner_points: int


class PerkGranted(Event):
    event_type = "partner.perk_granted"
    description = (
        "A paid plan's period began and gave the member a partner's perk: a code we issued, or the next "
        "of those the partner uploaded (also sent when a perk owed while its pool was empty gets its "
        "code), which the partner redeems with `POST /v1/partner/perks/{code}/redeem`. "
        "`partner_customer_ref` is null when the member is not linked to the partner."
    )

    perk_id: uuid.UUID
    partner: str
    code: str
    name: str
    plan: str
    period: int
    partner_customer_ref: str | None


class JointBenefitUsed(Event):
    event_type = "partner.benefit_used"
    description = "A partner recorded that a linked member used one of its joint benefits."

    member_id: uuid.UUID
    partner: str
    partner_customer_ref: str
    benefit_id: uuid.UUID
    benefit_name: str
    use_ref: str
