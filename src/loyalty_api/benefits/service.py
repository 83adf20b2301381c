"""Benefits: what tiers and paid plans give their members, and what one member gets."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from loyalty_api.benefits.errors import BenefitNotFound
from loyalty_api.benefits.events import BenefitChanged
from loyalty_api.benefits.standing import BenefitSource, EffectiveBenefit, standings
from loyalty_api.db.changes import column_values
from loyalty_api.db.pagination import Page, decode_cursor, page_of, scope_of
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.grants.granted import properties_of
from loyalty_api.grants.models import Benefit
from loyalty_api.grants.repository import BenefitRepository
from loyalty_api.members.errors import MemberNotFound
from loyalty_api.members.repository import MemberRepository
from loyalty_api.offers import BenefitProperties
from loyalty_api.outbox.service import emit_for_programme
from loyalty_api.partners.joint import JOINT_CACHE_KEY, JointOffer, joint_offers
from loyalty_api.plan_catalogue.catalogue import PLANS_CACHE_KEY, CatalogPlan, Catalogue
from loyalty_api.plan_catalogue.service import get_catalogue
from loyalty_api.tiers import service as tiers
from loyalty_api.tiers.ladder import LADDER_CACHE_KEY, Ladder, LadderTier, TierRef

BENEFITS = scope_of("benefits")  # the benefit list's cursors carry it


@dataclass(frozen=True, slots=True)
class BenefitDefinition:
    name: str
    properties: BenefitProperties
    active: bool


@dataclass(frozen=True, slots=True)
class BenefitView:
    id: uuid.UUID
    name: str
    properties: BenefitProperties
    active: bool
    sources: list[BenefitSource]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MemberBenefits:
    member_id: uuid.UUID
    tier: TierRef | None
    plan_codes: list[str]
    benefits: list[EffectiveBenefit]


async def _view(uow: UnitOfWork, row: Benefit) -> BenefitView:
    return _shown(row, await tiers.get_ladder(uow), await get_catalogue(uow), await joint_offers(uow))


def _shown(row: Benefit, ladder: Ladder, catalogue: Catalogue, offers: Sequence[JointOffer]) -> BenefitView:
    holders: list[tuple[str, Sequence[LadderTier | CatalogPlan | JointOffer]]] = [
        ("tier", ladder.tiers),
        ("plan", catalogue.plans),
        ("partner", offers),
    ]
    sources = [
        BenefitSource(type=kind, ref=holder.code, name=holder.name)
        for kind, found in holders
        for holder in found
        if any(b.id == row.id for b in holder.benefits)
    ]
    return BenefitView(
        id=row.id,
        name=row.name,
        properties=properties_of(row),
        active=row.active,
        sources=sources,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _apply(row: Benefit, definition: BenefitDefinition) -> None:
    row.name = definition.name
    row.kind = definition.properties.kind
    row.properties = definition.properties.model_dump(mode="json", exclude={"kind"})
    row.active = definition.active


async def _changed(uow: UnitOfWork, row: Benefit, change: Literal["created", "replaced", "deleted"]) -> None:
    # Tiers, plans and partners' joint offers carry their benefits: the cached copies are stale now.
    await uow.forget_cached(LADDER_CACHE_KEY)
    await uow.forget_cached(PLANS_CACHE_KEY)
    await uow.forget_cached(JOINT_CACHE_KEY)
    await emit_for_programme(
        uow, BenefitChanged(benefit_id=row.id, name=row.name, kind=row.kind, change=change), str(row.id)
    )


async def create_benefit(uow: UnitOfWork, definition: BenefitDefinition) -> BenefitView:
    now = uow.clock.now()
    row = Benefit(created_at=now, updated_at=now)
    _apply(row, definition)
    await BenefitRepository(uow.session).insert_benefit(row)
    await _changed(uow, row, "created")
    return await _view(uow, row)


async def replace_benefit(
    uow: UnitOfWork, benefit_id: uuid.UUID, definition: BenefitDefinition
) -> BenefitView:
    repo = BenefitRepository(uow.session)
    # Locked: a delete racing this replace either waits for it or has removed the benefit (404), where an
    # unlocked read would update a row no longer there (a 500).
    row = await repo.lock_benefit(benefit_id)
    if row is None:
        raise BenefitNotFound()
    await uow.subject_locked()
    before = column_values(row)
    _apply(row, definition)
    if column_values(row) == before:  # sent again as it is: no change to announce (db/changes.py)
        return await _view(uow, row)
    row.updated_at = uow.clock.now()
    await repo.save_benefit()
    await _changed(uow, row, "replaced")
    return await _view(uow, row)


async def get_benefit(uow: UnitOfWork, benefit_id: uuid.UUID) -> BenefitView:
    row = await BenefitRepository(uow.session).get_benefit(benefit_id)
    if row is None:
        raise BenefitNotFound()
    return await _view(uow, row)


async def list_benefits(uow: UnitOfWork, *, limit: int, cursor: str | None) -> Page[BenefitView]:
    """Benefits, oldest first, a page at a time."""
    rows = await BenefitRepository(uow.session).list_benefits(
        after_id=decode_cursor(cursor, BENEFITS), limit=limit + 1
    )
    page = page_of(rows, limit, lambda row: row.id, BENEFITS)
    # Once for the page: the sources of every benefit come from them.
    ladder, catalogue, offers = await tiers.get_ladder(uow), await get_catalogue(uow), await joint_offers(uow)
    return page.with_items([_shown(row, ladder, catalogue, offers) for row in page.items])


async def delete_benefit(uow: UnitOfWork, benefit_id: uuid.UUID) -> None:
    """Delete a benefit and take it away from every tier that gave it (a new ladder version records that)."""
    repo = BenefitRepository(uow.session)
    # Locked, and the delete's own answer checked: of two deletes at once only the one that removed the
    # benefit answers 204 and announces it; the other finds it gone (404).
    row = await repo.lock_benefit(benefit_id)
    if row is None:
        raise BenefitNotFound()
    granted = await repo.list_sources_of(benefit_id)
    if not await repo.delete_benefit(benefit_id):
        raise BenefitNotFound()
    await _changed(uow, row, "deleted")
    if any(source_type == "tier" for source_type, _ in granted):
        await tiers.record_ladder_version(uow)


async def member_benefits(uow: UnitOfWork, member_id: uuid.UUID) -> MemberBenefits:
    """The member's benefits in force, each with where it comes from: their tier, their paid plans and the
    partners they are linked to."""
    found = (await members_benefits(uow, [member_id])).get(member_id)
    if found is None:
        raise MemberNotFound()
    return found


async def members_benefits(
    uow: UnitOfWork, member_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, MemberBenefits]:
    """The benefits in force of each member of `member_ids` that exists, read together (GraphQL batches its
    lookups)."""
    holders = await MemberRepository(uow.session).list_holders(member_ids)
    found = await standings(uow, [(holder.id, holder) for holder in holders])
    return {
        member_id: MemberBenefits(
            member_id=member_id,
            tier=None if held.tier is None else held.tier.ref,
            plan_codes=[p.code for p in held.plans],
            benefits=list(held.benefits),
        )
        for member_id, held in found.items()
    }
