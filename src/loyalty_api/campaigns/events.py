from __future__ import annotations

import uuid

from loyalty_api.clock import UtcInstant
from loyalty_api.outbox.events import Event

# A campaign's coupons are announced by `coupon.issued` (source_type `campaign`, source_id the campaign's id),
# as every coupon is; its points by `campaign.points_granted`, one event a member.


class CampaignCreated(Event):
    event_type = "campaign.created"
    description = "An operator made a campaign; the worker starts reaching its audience within seconds."

    campaign_id: uuid.UUID
    name: str
    action: str


class CampaignPointsGranted(Event):
    event_type = "campaign.points_granted"
    description = (
        "A campaign gave a member points (ledger entry type `campaign`), with the campaign's reason."
    )

    member_id: uuid.UUID
    campaign_id: uuid.UUID
    points: int
    reason: str
    balance: int


class CampaignCompleted(Event):
    event_type = "campaign.completed"
    description = (
        "A campaign reached the last member of its audience: how many it reached and what it gave them."
    )

    campaign_id: uuid.UUID
    name: str
    reached: int
    coupons_issued: int
    points_granted: int
    finished_at: UtcInstant


class CampaignCancelled(Event):
    event_type = "campaign.cancelled"
    description = (
        "An operator cancelled a campaign before it reached its whole audience: those it reached keep what "
        "it gave them, and nobody more is reached."
    )

    campaign_id: uuid.UUID
    name: str
    reached: int
