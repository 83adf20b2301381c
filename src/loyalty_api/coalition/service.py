"""What a partner sees of a member linked to it, and records for them: the joint view (tier, paid plans, the
partner's joint benefits that reach the member and, only when the member granted it, points; never personal
data), and the uses of those joint benefits at the partner's till.

The member is named by the partner's own customer reference, looked up among that partner's links alone
(`partners.service.partner_link`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from loyalty_api.benefits.standing import standing
from loyalty_api.db.constraints import DuplicateKey
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.members.models import MemberStatus
from loyalty_api.members.repository import MemberRepository
from loyalty_api.outbox.service import emit_for_member
from loyalty_api.partners.errors import BenefitUseRecorded, LinkNotFound, NotEntitled
from loyalty_api.partners.events import JointBenefitUsed
from loyalty_api.partners.models import PartnerBenefitUse, PartnerLink
from loyalty_api.partners.repository import PartnerRepository
from loyalty_api.partners.service import locked_partner_link, partner_link
from loyalty_api.plan_catalogue.catalogue import CatalogPlan
from loyalty_api.points.service import summaries
from loyalty_api.tiers.ladder import TierRef


@dataclass(frozen=True, slots=True)
class PartnerPoints:
    balance: int
    available: int


@dataclass(frozen=True, slots=True)
class JointBenefit:
    id: uuid.UUID
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class PartnerMemberView:
    """A linked member as their partner sees them."""

    partner_customer_ref: str
    member_id: uuid.UUID
    status: MemberStatus
    tier: TierRef | None
    paid_plans: list[str]
    joint_benefits: list[JointBenefit]  # this partner's, those that reach the member
    points: PartnerPoints | None  # None unless the member granted `points`
    grants: list[str]
    linked_at: datetime


@dataclass(frozen=True, slots=True)
class _Linked:
    """What the partner may know of the member it linked, from their record and their standing."""

    status: MemberStatus
    tier: TierRef | None
    plans: Sequence[CatalogPlan]
    joint: list[JointBenefit]  # the partner's joint benefits the member is entitled to now


async def _linked(uow: UnitOfWork, row: PartnerLink) -> _Linked:
    holder = await MemberRepository(uow.session).get_points_holder(row.member_id)
    if holder is None:  # cannot happen while the link stands; never answer it differently
        raise LinkNotFound()
    held = await standing(uow, row.member_id, holder)
    joint = [
        JointBenefit(id=b.id, name=b.name, kind=b.properties.kind)
        for offer in held.partners
        if offer.partner_id == row.partner_id
        for b in offer.benefits
        if b.active
    ]
    tier = None if held.tier is None else held.tier.ref
    return _Linked(MemberStatus(holder.status), tier, held.plans, joint)


async def granted_points(uow: UnitOfWork, row: PartnerLink) -> PartnerPoints | None:
    """The member's points as a spend finds them (points past their end gone, whether or not the expiry job
    has run), if they let the partner see them: the joint view's figures, and every answer to the partner."""
    if "points" not in row.grants:
        return None
    found = (await summaries(uow, [row.member_id]))[row.member_id]
    return PartnerPoints(balance=found.balance, available=found.available)


async def partner_view(uow: UnitOfWork, partner_id: uuid.UUID, ref: str) -> PartnerMemberView:
    """The joint view of the member the partner linked under `ref`; LinkNotFound for any other. Read from the
    member's record and standing: nothing personal is read, let alone decrypted."""
    _, row = await partner_link(uow, partner_id, ref)
    linked = await _linked(uow, row)
    points = await granted_points(uow, row)
    return PartnerMemberView(
        partner_customer_ref=row.partner_customer_ref,
        member_id=row.member_id,
        status=linked.status,
        tier=linked.tier,
        paid_plans=[p.code for p in linked.plans],
        joint_benefits=linked.joint,
        points=points,
        grants=list(row.grants),
        linked_at=row.created_at,
    )


@dataclass(frozen=True, slots=True)
class BenefitUse:
    benefit_id: uuid.UUID
    benefit_name: str
    use_ref: str
    used_at: datetime


async def record_benefit_use(
    uow: UnitOfWork, partner_id: uuid.UUID, ref: str, *, benefit_id: uuid.UUID, use_ref: str
) -> BenefitUse:
    """The partner's till or checkout records that the member it linked as `ref` used one of its joint
    benefits: only one they are entitled to now, once per `use_ref`."""
    partner, row = await locked_partner_link(uow, partner_id, ref)
    repo = PartnerRepository(uow.session)
    if await repo.get_benefit_use(partner.id, use_ref) is not None:
        raise BenefitUseRecorded()
    joint = (await _linked(uow, row)).joint
    benefit = next((b for b in joint if b.id == benefit_id), None)
    if benefit is None:
        raise NotEntitled()
    now = uow.clock.now()
    use = PartnerBenefitUse(
        partner_id=partner.id,
        member_id=row.member_id,
        benefit_id=benefit.id,
        benefit_name=benefit.name,
        use_ref=use_ref,
        created_at=now,
    )
    with _duplicate_use():
        await repo.insert_benefit_use(use)
    await emit_for_member(
        uow,
        JointBenefitUsed(
            member_id=row.member_id,
            partner=partner.code,
            partner_customer_ref=row.partner_customer_ref,
            benefit_id=benefit.id,
            benefit_name=benefit.name,
            use_ref=use_ref,
        ),
        row.member_id,
        partner.id,
    )
    return BenefitUse(benefit_id=benefit.id, benefit_name=benefit.name, use_ref=use_ref, used_at=now)


@contextmanager
def _duplicate_use() -> Iterator[None]:
    try:
        yield
    except DuplicateKey as exc:
        if exc.constraint == "uq_partner_benefit_uses__partner_id_use_ref":
            raise BenefitUseRecorded() from exc
        raise
