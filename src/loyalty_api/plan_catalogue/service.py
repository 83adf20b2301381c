"""The plans on sale, read once per process and cached (like the tier ladder): what subscriptions, benefits,
partners' joint offers and perks read of them. Operators change them through `plans`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime

from pydantic import TypeAdapter

from loyalty_api.db.uow import UnitOfWork
from loyalty_api.grants.granted import GrantedBenefit
from loyalty_api.grants.repository import BenefitRepository
from loyalty_api.money import Money
from loyalty_api.plan_catalogue.catalogue import (
    PLANS_CACHE_KEY,
    CatalogPlan,
    Catalogue,
    Interval,
    PartnerPerkOffer,
    RecurringCoupon,
)
from loyalty_api.plan_catalogue.repository import PlanRepository

_COUPONS_ADAPTER: TypeAdapter[list[RecurringCoupon]] = TypeAdapter(list[RecurringCoupon])
_PERKS_ADAPTER: TypeAdapter[list[PartnerPerkOffer]] = TypeAdapter(list[PartnerPerkOffer])


async def get_catalogue(
    uow: UnitOfWork,
    *,
    having: Iterable[uuid.UUID] = (),
    as_stored: Mapping[uuid.UUID, datetime] | None = None,
) -> Catalogue:
    """The plans, from this process's cache unless it lacks one of `having`, or holds one of `as_stored` with
    another `updated_at` than its row, just read, has: a plan another process created or changed moments ago
    is then read at once rather than missed (its notification may still be on the way)."""
    cached: Catalogue | None = uow.cache.get(PLANS_CACHE_KEY)
    if cached is not None and _holds(cached, having, as_stored or {}):
        return cached
    catalogue = await load_catalogue(uow)
    uow.cache.put(PLANS_CACHE_KEY, catalogue, uow.cache_stamp)
    return catalogue


def _holds(
    catalogue: Catalogue, having: Iterable[uuid.UUID], as_stored: Mapping[uuid.UUID, datetime]
) -> bool:
    if any(catalogue.by_id(plan_id) is None for plan_id in having):
        return False
    for plan_id, updated_at in as_stored.items():
        plan = catalogue.by_id(plan_id)
        if plan is None or plan.updated_at != updated_at:
            return False
    return True


async def load_catalogue(uow: UnitOfWork) -> Catalogue:
    rows = await PlanRepository(uow.session).list_plans()
    grants = await BenefitRepository(uow.session).list_grants([("plan", p.id) for p in rows])
    return Catalogue(
        plans=tuple(
            CatalogPlan(
                id=p.id,
                code=p.code,
                family=p.family,
                name=p.name,
                price=Money(amount_minor=p.price_amount_minor, currency=p.price_currency),
                interval=Interval(p.interval_unit),
                interval_count=p.interval_count,
                trial_days=p.trial_days,
                grace_days=p.grace_days,
                coupons=tuple(_COUPONS_ADAPTER.validate_python(p.coupons)),
                partner_perks=tuple(_PERKS_ADAPTER.validate_python(p.partner_perks)),
                benefits=tuple(GrantedBenefit.stored(b) for _, source_id, b in grants if source_id == p.id),
                active=p.active,
                created_at=p.created_at,
                updated_at=p.updated_at,
            )
            for p in rows
        )
    )
