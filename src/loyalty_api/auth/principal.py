"""Who is calling, and what they may do."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from loyalty_api.auth.networks import Network


class Scope(StrEnum):
    admin = "admin"
    pos = "pos"
    ecommerce = "ecommerce"
    partner = "partner"
    billing = "billing"


# The scopes whose writes the audit log records: the back office, billing and partners (a till's earn is
# in the ledger already, with its key).
AUDITED = frozenset({Scope.admin, Scope.billing, Scope.partner})


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: uuid.UUID
    key_prefix: str
    # The key's line across rotations (the first key's prefix): what an Idempotency-Key belongs to, and what
    # the key's rate budgets are counted under, so that a key and its replacement in a rotation's overlap
    # spend one budget rather than one each.
    key_lineage: str
    name: str
    scopes: frozenset[Scope]
    partner_id: uuid.UUID | None
    # The key's own rate limit ("500/second"), or None for its scopes' defaults.
    rate_limit: str | None = None
    # Checked against the clock on every request, so a key stops at its expiry in every process at once.
    expires_at: datetime | None = None
    # The client networks the key may be used from, parsed when the key was loaded; None: any address.
    networks: tuple[Network, ...] | None = None

    def has_any(self, allowed: frozenset[Scope]) -> bool:
        return not self.scopes.isdisjoint(allowed)

    @property
    def audited(self) -> bool:
        return self.has_any(AUDITED)
