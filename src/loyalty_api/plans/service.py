"""Paid plans as operators manage them: create, change, delete, list (the catalogue every request reads is in
`plan_catalogue`).

A plan's price belongs to its periods: changing it here leaves every subscription's current period at the
price it started with; each subscription moves to the new price when its next period begins.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from loyalty_api.db.changes import column_values
from loyalty_api.db.constraints import DuplicateKey
from loyalty_api.db.pagination import Page, page_after, scope_of
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.grants.repository import BenefitRepository
from loyalty_api.money import Money
from loyalty_api.outbox.events import MoneyPayload
from loyalty_api.outbox.service import emit_for_programme
from loyalty_api.partners.repository import PartnerRepository
from loyalty_api.plan_catalogue.catalogue import (
    PLANS_CACHE_KEY,
    CatalogPlan,
    Interval,
    PartnerPerkOffer,
    RecurringCoupon,
)
from loyalty_api.plan_catalogue.errors import PlanNotFound
from loyalty_api.plan_catalogue.models import Plan
from loyalty_api.plan_catalogue.repository import PlanRepository
from loyalty_api.plan_catalogue.service import get_catalogue, load_catalogue
from loyalty_api.plans.errors import PlanExists, PlanInUse
from loyalty_api.plans.events import PlanChanged
from loyalty_api.points.errors import CurrencyMismatch
from loyalty_api.program.service import get_program
from loyalty_api.subscriptions.repository import SubscriptionRepository
from loyalty_api.subscriptions.service import apply_grace_change

PLANS = scope_of("plans")  # the plan list's cursors carry it


@dataclass(frozen=True, slots=True)
class PlanDefinition:
    name: str
    price: Money
    interval: Interval
    interval_count: int
    trial_days: int
    grace_days: int
    benefit_ids: Sequence[uuid.UUID]
    coupons: Sequence[RecurringCoupon]
    active: bool
    partner_perks: Sequence[PartnerPerkOffer] = ()


async def list_plans(uow: UnitOfWork, *, limit: int, cursor: str | None) -> Page[CatalogPlan]:
    """The plans by code, a page at a time (from the cached catalogue)."""
    plans = (await get_catalogue(uow)).plans
    return page_after(
        plans, limit=limit, cursor=cursor, key=lambda plan: (plan.code,), shape=(str,), scope=PLANS
    )


async def get_plan(uow: UnitOfWork, code: str) -> CatalogPlan:
    plan = (await get_catalogue(uow)).by_code(code)
    if plan is None:
        raise PlanNotFound()
    return plan


async def _apply(uow: UnitOfWork, row: Plan, definition: PlanDefinition) -> None:
    currency = (await get_program(uow)).currency
    if definition.price.currency != currency:
        raise CurrencyMismatch(f"The price must be in {currency}, not {definition.price.currency}")
    shortest_period_days = (
        28 * definition.interval_count * (12 if definition.interval is Interval.year else 1)
    )
    if definition.grace_days >= shortest_period_days:
        # A grace longer than a period would let a late payment renew a period that is already over.
        raise InvalidField("grace_days", f"must be shorter than one period ({shortest_period_days} days)")
    benefit_ids = list(dict.fromkeys(definition.benefit_ids))
    found = {b.id for b in await BenefitRepository(uow.session).list_by_ids(benefit_ids)}
    missing = [str(b) for b in benefit_ids if b not in found]
    if missing:
        raise InvalidField("benefit_ids", f"no such benefit: {', '.join(missing)}")
    row.name = definition.name
    row.price_amount_minor = definition.price.amount_minor
    row.price_currency = definition.price.currency
    row.interval_unit = definition.interval
    row.interval_count = definition.interval_count
    row.trial_days = definition.trial_days
    row.grace_days = definition.grace_days
    partners = PartnerRepository(uow.session)
    for index, perk in enumerate(definition.partner_perks):
        if await partners.get_by_code(perk.partner) is None:
            raise InvalidField(f"partner_perks.{index}.partner", f"no such partner: {perk.partner}")
    row.coupons = [c.model_dump(mode="json") for c in definition.coupons]
    row.partner_perks = [p.model_dump(mode="json") for p in definition.partner_perks]
    row.active = definition.active


async def _changed(uow: UnitOfWork, row: Plan, change: Literal["created", "replaced", "deleted"]) -> None:
    await uow.forget_cached(PLANS_CACHE_KEY)
    await emit_for_programme(
        uow,
        PlanChanged(
            plan_id=row.id,
            code=row.code,
            price=MoneyPayload(amount=row.price_amount_minor, currency=row.price_currency),
            active=row.active,
            change=change,
        ),
        str(row.id),
    )


@contextmanager
def _duplicate_code_named() -> Iterator[None]:
    # Two operators adding the same code at once: the unique constraint decides.
    try:
        yield
    except DuplicateKey as exc:
        if exc.constraint == "uq_plans__code":
            raise PlanExists() from exc
        raise


async def create_plan(
    uow: UnitOfWork, code: str, family: str | None, definition: PlanDefinition
) -> CatalogPlan:
    repo = PlanRepository(uow.session)
    if await repo.get_by_code(code) is not None:
        raise PlanExists()
    now = uow.clock.now()
    row = Plan(code=code, family=family or code, created_at=now, updated_at=now)
    await _apply(uow, row, definition)
    with _duplicate_code_named():
        await repo.insert_plan(row)
    await BenefitRepository(uow.session).replace_grants("plan", row.id, definition.benefit_ids)
    await _changed(uow, row, "created")
    return await _fresh(uow, code)


async def replace_plan(uow: UnitOfWork, code: str, definition: PlanDefinition) -> CatalogPlan:
    """Replace a plan's terms. Running subscriptions keep their current period's price and length (see the
    module); those already told what their next period costs are told again when the price changes."""
    repo = PlanRepository(uow.session)
    # Locked: a delete racing this replace either waits for it or has removed the plan (404), where an
    # unlocked read would update a row no longer there (a 500).
    row = await repo.lock_by_code(code, to="replace")
    if row is None:
        raise PlanNotFound()
    await uow.subject_locked()
    old_price = (row.price_amount_minor, row.price_currency)
    before_grace = row.grace_days
    before = column_values(row)
    benefits = BenefitRepository(uow.session)
    granted = await benefits.granted_ids("plan", row.id)
    await _apply(uow, row, definition)
    if column_values(row) == before and set(definition.benefit_ids) == granted:
        # Sent again as it is (db/changes.py): nothing to write, forget or announce.
        return await _fresh(uow, code)
    row.updated_at = uow.clock.now()
    if row.grace_days != before_grace:
        await repo.save_plan()
        # Read from the database: the cached catalogue holds the old grace until this commits.
        changed = (await load_catalogue(uow)).by_id(row.id)
        assert changed is not None
        # Before the renotice: this locks the members first, as every change to their subscriptions does.
        await apply_grace_change(uow, changed)
    if (row.price_amount_minor, row.price_currency) != old_price:
        await SubscriptionRepository(uow.session).renotify_unpaid(row.id, uow.clock.now())
    await repo.save_plan()
    await benefits.replace_grants("plan", row.id, definition.benefit_ids)
    await _changed(uow, row, "replaced")
    return await _fresh(uow, code)


async def delete_plan(uow: UnitOfWork, code: str) -> None:
    """Delete a plan nobody ever subscribed to; one with subscriptions is deactivated instead (PUT)."""
    repo = PlanRepository(uow.session)
    row = await repo.lock_by_code(code, to="delete")
    if row is None:
        raise PlanNotFound()
    if await SubscriptionRepository(uow.session).exists_subscription_to(row.id):
        raise PlanInUse()
    await BenefitRepository(uow.session).replace_grants("plan", row.id, [])
    # The delete's own answer checked: only the one that removed the plan answers 204 and announces it.
    if not await repo.delete_plan(row.id):
        raise PlanNotFound()
    await _changed(uow, row, "deleted")


async def _fresh(uow: UnitOfWork, code: str) -> CatalogPlan:
    """The plan as this transaction now sees it (the cache may hold the catalogue from before the change)."""
    plan = (await load_catalogue(uow)).by_code(code)
    assert plan is not None
    return plan
