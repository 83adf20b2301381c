"""Joint-plan perks: a paid plan can include a partner's perk ("buy the video annual card, get a month of
delivery membership"). Each paid period that begins gives the member one code per perk, once (the issue key is
subscription, period and place in the plan), and tells the partner; the partner redeems the code once.

Called from the subscription's period start, so it imports nothing of the services that import subscriptions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from loyalty_api.coupons.codes import generate_code
from loyalty_api.db.ids import new_id
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.outbox.service import emit_for_partner
from loyalty_api.partners.events import PerkGranted
from loyalty_api.partners.models import PartnerPerk
from loyalty_api.partners.repository import PartnerRepository, PerkRepository
from loyalty_api.plans.catalogue import CatalogPlan


@dataclass(frozen=True, slots=True)
class PerkView:
    code: str
    partner: str
    name: str
    plan: str
    period: int
    status: str
    partner_customer_ref: str | None  # to the partner: its customer, when the member is linked to it
    granted_at: datetime
    redeemed_at: datetime | None


async def grant_period_perks(
    uow: UnitOfWork, *, subscription_id: uuid.UUID, member_id: uuid.UUID, period: int, plan: CatalogPlan
) -> None:
    """The plan's partner perks for a paid period that begins: one code each, never twice for one period.
    A partner suspended (or gone) gives nothing for this period."""
    partners = PartnerRepository(uow.session)
    perks = PerkRepository(uow.session)
    now = uow.clock.now()
    for index, offer in enumerate(plan.partner_perks):
        partner = await partners.get_by_code(offer.partner)
        if partner is None or partner.status != "active":
            continue
        perk_id, code = new_id(), generate_code()
        granted = await perks.insert_if_new(
            {
                "id": perk_id,
                "partner_id": partner.id,
                "member_id": member_id,
                "subscription_id": subscription_id,
                "period_number": period,
                "plan_code": plan.code,
                "issue_key": f"{subscription_id}:{period}:{index}",
                "name": offer.name,
                "code": code,
                "status": "issued",
                "created_at": now,
                "redeemed_at": None,
            }
        )
        if not granted:
            continue
        link = await partners.get_member_link(partner.id, member_id)
        await emit_for_partner(
            uow,
            PerkGranted(
                perk_id=perk_id,
                partner=partner.code,
                code=code,
                name=offer.name,
                plan=plan.code,
                period=period,
                partner_customer_ref=None if link is None else link.partner_customer_ref,
            ),
            member_id,
            partner.id,
        )


def perk_view(perk: PartnerPerk, partner_code: str, customer_ref: str | None) -> PerkView:
    return PerkView(
        code=perk.code,
        partner=partner_code,
        name=perk.name,
        plan=perk.plan_code,
        period=perk.period_number,
        status=perk.status,
        partner_customer_ref=customer_ref,
        granted_at=perk.created_at,
        redeemed_at=perk.redeemed_at,
    )
