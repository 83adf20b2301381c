"""A campaign's audience: which members it reaches. Every filter given must hold; none given is every active
member. The SQL that selects them is CampaignRepository.lock_audience_next; this module holds what it is
given."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from loyalty_api.crypto import Vault
from loyalty_api.members.birthday_keys import month_key


@dataclass(frozen=True, slots=True)
class Audience:
    tier_id: uuid.UUID | None = None
    plan_id: uuid.UUID | None = (
        None  # members with an active (paid, not trial or past due) subscription to it
    )
    lifecycle: str | None = None
    segment: str | None = None
    birthday_month: int | None = None  # 1–12

    def birthday_month_key(self, vault: Vault) -> str | None:
        """The keyed hash members born in the month carry (members/birthday_keys.py): a birthday is never
        decrypted to select members by it."""
        return None if self.birthday_month is None else month_key(vault, self.birthday_month)
