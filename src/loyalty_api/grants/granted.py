"""A benefit as a tier, a plan or a partner's joint offer carries it (and the caches keep it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loyalty_api.offers import PROPERTIES_ADAPTER, BenefitProperties

if TYPE_CHECKING:  # pure values: the tier ladder and the plans import them without the ORM
    from loyalty_api.grants.models import Benefit


@dataclass(frozen=True, slots=True)
class GrantedBenefit:
    id: uuid.UUID
    name: str
    properties: BenefitProperties
    active: bool

    @classmethod
    def stored(cls, row: Benefit) -> GrantedBenefit:
        """The benefit as its row stores it (kind beside the properties)."""
        return cls(id=row.id, name=row.name, properties=properties_of(row), active=row.active)


def properties_of(row: Benefit) -> BenefitProperties:
    return PROPERTIES_ADAPTER.validate_python({**row.properties, "kind": row.kind})
