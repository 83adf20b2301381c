"""Who is calling, and what they may do."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    admin = "admin"
    pos = "pos"
    ecommerce = "ecommerce"
    partner = "partner"
    billing = "billing"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: uuid.UUID
    key_prefix: str
    name: str
    scopes: frozenset[Scope]
    partner_id: uuid.UUID | None
    # The key's own rate limit ("500/second"), or None for its scopes' defaults.
    rate_limit: str | None = None

    def has_any(self, allowed: frozenset[Scope]) -> bool:
        return not self.scopes.isdisjoint(allowed)
