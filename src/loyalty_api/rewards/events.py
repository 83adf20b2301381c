from __future__ import annotations

import uuid
from typing import Literal

from loyalty_api.outbox.events import Event


class RewardChanged(Event):
    event_type = "reward.changed"
    description = "An operator created or replaced a reward of the catalogue."

    reward_id: uuid.UUID
    name: str
    cost_points: int
    active: bool
    change: Literal["created", "replaced"]


class RewardRedeemed(Event):
    event_type = "reward.redeemed"
    description = "A member bought a reward with points and was given its coupon."

    redemption_id: uuid.UUID
    reward_id: uuid.UUID
    member_id: uuid.UUID
    coupon_id: uuid.UUID
    points: int
    balance: int
    stock_left: int | None
