"""Joint benefits: what partners give the members linked to them, as benefits lists, quotes and earns read
them. The offers are pure values cached per process, like the tier ladder and the plans; with none defined a
read costs no query at all."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from loyalty_api.db.uow import UnitOfWork
from loyalty_api.grants.granted import GrantedBenefit
from loyalty_api.grants.repository import BenefitRepository
from loyalty_api.partners.repository import PartnerRepository
from loyalty_api.plan_catalogue.catalogue import CatalogPlan
from loyalty_api.tiers.ladder import LadderTier

JOINT_CACHE_KEY = "joint-benefits"


@dataclass(frozen=True, slots=True)
class JointOffer:
    """An active partner's joint benefits, and whom of its linked members they reach."""

    partner_id: uuid.UUID
    code: str
    name: str
    benefits: tuple[GrantedBenefit, ...]
    tiers: frozenset[str]  # empty: every tier
    plans: frozenset[str]  # empty: no paid plan needed

    def reaches(self, tier: LadderTier | None, plans: Sequence[CatalogPlan]) -> bool:
        if self.tiers and (tier is None or tier.code not in self.tiers):
            return False
        return not self.plans or any(plan.code in self.plans for plan in plans)


async def joint_offers(uow: UnitOfWork) -> tuple[JointOffer, ...]:
    cached: tuple[JointOffer, ...] | None = uow.cache.get(JOINT_CACHE_KEY)
    if cached is None:
        cached = await _load(uow)
        uow.cache.put(JOINT_CACHE_KEY, cached, uow.cache_stamp)
    return cached


async def _load(uow: UnitOfWork) -> tuple[JointOffer, ...]:
    partners = await PartnerRepository(uow.session).list_active()
    grants = await BenefitRepository(uow.session).list_grants([("partner", p.id) for p in partners])
    offers = []
    for partner in partners:
        benefits = tuple(GrantedBenefit.stored(b) for _, source_id, b in grants if source_id == partner.id)
        if benefits:
            offers.append(
                JointOffer(
                    partner_id=partner.id,
                    code=partner.code,
                    name=partner.name,
                    benefits=benefits,
                    tiers=frozenset(partner.benefit_tiers),
                    plans=frozenset(partner.benefit_plans),
                )
            )
    return tuple(offers)


Standing = tuple[uuid.UUID, LadderTier | None, Sequence[CatalogPlan]]


async def members_joint_offers(
    uow: UnitOfWork, members: Sequence[Standing]
) -> dict[uuid.UUID, list[JointOffer]]:
    """The joint offers reaching each of `members` (id, tier, the paid plans in force): of the partners each
    is linked to, those whose conditions they meet. One read of links, none without offers."""
    offers = await joint_offers(uow)
    if not offers or not members:
        return {}
    by_partner = {offer.partner_id: offer for offer in offers}
    links = await PartnerRepository(uow.session).partners_of_members(
        [member_id for member_id, _, _ in members]
    )
    reached: dict[uuid.UUID, list[JointOffer]] = {}
    for member_id, tier, plans in members:
        reached[member_id] = [
            offer
            for partner_id in links.get(member_id, [])
            if (offer := by_partner.get(partner_id)) is not None and offer.reaches(tier, plans)
        ]
    return reached
