"""A member's standing: the tier they are on, the paid plans in force, the partners' joint offers that reach
them, and the benefits all of these give, each with its sources. The one way earn, the checkout quote, the
benefits list, GraphQL and a partner's view of a member learn what the member holds."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from loyalty_api.db.uow import UnitOfWork
from loyalty_api.grants.granted import GrantedBenefit
from loyalty_api.offers import BenefitProperties
from loyalty_api.partners.joint import JointOffer, members_joint_offers
from loyalty_api.plan_catalogue.catalogue import CatalogPlan
from loyalty_api.subscriptions.service import has_plan_benefits, members_plans_in_force
from loyalty_api.tiers.ladder import LadderTier
from loyalty_api.tiers.service import get_ladder


class MemberFacts(Protocol):
    """What standing needs of the member row, which every caller has read already."""

    @property
    def status(self) -> str: ...

    @property
    def tier_id(self) -> uuid.UUID | None: ...

    @property
    def plan_benefits_until(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class BenefitSource:
    type: str  # tier | plan | partner
    ref: str  # the tier's, plan's or partner's code
    name: str


@dataclass(frozen=True, slots=True)
class EffectiveBenefit:
    id: uuid.UUID
    name: str
    properties: BenefitProperties
    sources: list[BenefitSource]


@dataclass(frozen=True, slots=True)
class MemberStanding:
    tier: LadderTier | None
    plans: Sequence[CatalogPlan]
    partners: Sequence[JointOffer]  # the joint offers that reach the member
    benefits: Sequence[EffectiveBenefit]  # none unless the member is active


async def standings(
    uow: UnitOfWork, members: Sequence[tuple[uuid.UUID, MemberFacts]], *, plans_at: datetime | None = None
) -> dict[uuid.UUID, MemberStanding]:
    """The standing of each of `members` (id and row), read together: one statement for the plans of those
    whose row says a plan may be in force, one for the partner links when any partner offers something, the
    ladder, plans and offers from the process's caches. A member who is not active holds no plans, offers or
    benefits; their tier is still theirs. With `plans_at` (a purchase's time, for a receipt synced late), the
    plans are those held then, one statement for them whatever the row's mark says (it tells only of now)."""
    ladder = await get_ladder(uow)
    now = uow.clock.now()
    active = [(member_id, row) for member_id, row in members if row.status == "active"]
    if plans_at is None:
        with_plans = [m for m, row in active if has_plan_benefits(row.plan_benefits_until, now)]
        plans = await members_plans_in_force(uow, with_plans) if with_plans else {}
    else:
        held_then = [member_id for member_id, _ in active]
        plans = await members_plans_in_force(uow, held_then, at=plans_at) if held_then else {}
    tier_of = {member_id: ladder.by_id(row.tier_id) for member_id, row in members}
    joint = await members_joint_offers(
        uow, [(member_id, tier_of[member_id], plans.get(member_id, [])) for member_id, _ in active]
    )
    found = {member_id: MemberStanding(tier_of[member_id], (), (), ()) for member_id, _ in members}
    for member_id, _ in active:
        held, offers = plans.get(member_id, []), joint.get(member_id, [])
        tier = tier_of[member_id]
        found[member_id] = MemberStanding(tier, held, offers, benefits_in_force(tier, held, offers))
    return found


async def standing(
    uow: UnitOfWork, member_id: uuid.UUID, member: MemberFacts, *, plans_at: datetime | None = None
) -> MemberStanding:
    return (await standings(uow, [(member_id, member)], plans_at=plans_at))[member_id]


def benefits_in_force(
    tier: LadderTier | None, plans: Sequence[CatalogPlan], partners: Sequence[JointOffer]
) -> list[EffectiveBenefit]:
    """The active benefits of `tier`, `plans` and the joint offers of `partners`. A benefit given by several
    sources is listed once, with all of them (the tier first, then plans, then partners)."""
    found: dict[uuid.UUID, tuple[GrantedBenefit, list[BenefitSource]]] = {}
    holdings = (
        [] if tier is None else [(BenefitSource(type="tier", ref=tier.code, name=tier.name), tier.benefits)]
    )
    holdings += [(BenefitSource(type="plan", ref=p.code, name=p.name), p.benefits) for p in plans]
    holdings += [(BenefitSource(type="partner", ref=o.code, name=o.name), o.benefits) for o in partners]
    for source, benefits in holdings:
        for benefit in benefits:
            if benefit.active:
                found.setdefault(benefit.id, (benefit, []))[1].append(source)
    return [
        EffectiveBenefit(id=b.id, name=b.name, properties=b.properties, sources=sources)
        for b, sources in found.values()
    ]
