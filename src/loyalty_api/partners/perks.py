"""Joint-plan perks: a paid plan can include a partner's perk ("buy the video annual card, get a month of
delivery membership"). Each paid period that begins gives the member one code per perk, once (the issue key is
subscription, period and place in the plan), and tells the partner; the partner redeems the code once.

A code is one we issue (`ours`) or one from the pool the partner uploaded for the perk (`pool`). A pool's
codes are kept encrypted (the member reads theirs back), found by a blind index. A perk whose pool is empty
is `owed`: it is granted, oldest first, from the next codes the partner uploads.

Called from the subscription's period start, so it imports nothing of the services that import subscriptions.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from loyalty_api.coupons.codes import generate_code
from loyalty_api.crypto import Vault
from loyalty_api.db.ids import new_id
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.outbox.service import emit_for_member
from loyalty_api.partners.events import PerkGranted
from loyalty_api.partners.models import Partner, PartnerPerk
from loyalty_api.partners.repository import PartnerRepository, PerkRepository
from loyalty_api.plan_catalogue.catalogue import CatalogPlan

logger = logging.getLogger(__name__)

# The blind index's kind for the codes partners upload.
POOL_CODE_INDEX = "partner_perk_code"


def pool_code_hash(vault: Vault, code: str) -> str:
    """How an uploaded code is found: exactly as the partner wrote it (its codes may be case-sensitive)."""
    return vault.blind_index(POOL_CODE_INDEX, code)


@dataclass(frozen=True, slots=True)
class PerkView:
    code: str | None  # None while owed
    partner: str
    name: str
    plan: str
    period: int
    source: str
    status: str
    partner_customer_ref: str | None  # to the partner: its customer, when the member is linked to it
    granted_at: datetime | None
    redeemed_at: datetime | None


async def grant_period_perks(
    uow: UnitOfWork, *, subscription_id: uuid.UUID, member_id: uuid.UUID, period: int, plan: CatalogPlan
) -> None:
    """The plan's partner perks for a paid period that begins: one code each, never twice for one period.
    A partner suspended (or gone) gives nothing for this period; an empty pool leaves the perk owed."""
    partners = PartnerRepository(uow.session)
    perks = PerkRepository(uow.session)
    now = uow.clock.now()
    for index, offer in enumerate(plan.partner_perks):
        partner = await partners.get_by_code(offer.partner)
        if partner is None or partner.status != "active":
            continue
        if offer.perk is not None:
            # An upload of codes waits for this grant to commit, then finds the perk owed if none was left.
            await perks.share_partner(partner.id)
        perk_id = new_id()
        code = None if offer.perk is not None else generate_code()
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
                "source": offer.source,
                "code": code,
                "pool": offer.perk,
                "status": "owed" if offer.perk is not None else "issued",
                "created_at": now,
                "granted_at": None if offer.perk is not None else now,
                "redeemed_at": None,
            }
        )
        if not granted:
            continue
        if code is None:
            assert offer.perk is not None  # a pooled perk
            code = await take_pool_code(uow, partner, offer.perk, perk_id)
            if code is None:
                logger.warning("partner perk owed: its pool is empty", extra={"partner": partner.code})
                continue
        await announce_perk(
            uow,
            partner,
            perk_id=perk_id,
            member_id=member_id,
            code=code,
            name=offer.name,
            plan=plan.code,
            period=period,
        )


async def void_owed_perks(uow: UnitOfWork, member_id: uuid.UUID) -> int:
    """A member closed or erased is owed no perk any more, as their subscriptions end: those still waiting
    for a code go, so the partner's next codes go to members who are here (and no event about a member who
    is gone names its customer). Call with the member's row locked; how many."""
    return await PerkRepository(uow.session).delete_owed_of_member(member_id)


async def grant_owed_perks(uow: UnitOfWork, member_id: uuid.UUID) -> int:
    """A member active again (after a suspension) gets the perks owed them from their pools' unused codes,
    oldest first, as an upload would give them: the uploads made while they were suspended passed them over
    and left those codes unused, and the next upload may be far off (meanwhile a newer subscriber would take
    the code). A perk whose pool is empty stays owed for the next upload; a suspended partner's stays owed
    too (it gives nothing, as at a period's start). Call with the member's row locked, once their status is
    saved; how many were granted."""
    partners = PartnerRepository(uow.session)
    perks = PerkRepository(uow.session)
    granted = 0
    for owed in await perks.lock_owed_of_member(member_id):
        partner = await partners.get(owed.partner_id)
        if partner is None or partner.status != "active" or owed.pool is None:
            continue
        # An upload in flight commits first and its codes are seen here; one after this waits for it to
        # commit, and finds the member active and this perk granted.
        await perks.share_partner(partner.id)
        code = await take_pool_code(uow, partner, owed.pool, owed.id)
        if code is None:
            continue
        await announce_perk(
            uow,
            partner,
            perk_id=owed.id,
            member_id=member_id,
            code=code,
            name=owed.name,
            plan=owed.plan_code,
            period=owed.period_number,
        )
        granted += 1
    return granted


async def take_pool_code(uow: UnitOfWork, partner: Partner, pool: str, perk_id: uuid.UUID) -> str | None:
    """Give the owed perk the pool's oldest unused code and mark it granted; the code, or None if none is
    left."""
    perks = PerkRepository(uow.session)
    sealed = await perks.take_pool_code(partner.id, pool, perk_id)
    if sealed is None:
        return None
    await perks.mark_granted(perk_id, uow.clock.now())
    return uow.vault.decrypt(sealed)


async def announce_perk(
    uow: UnitOfWork,
    partner: Partner,
    *,
    perk_id: uuid.UUID,
    member_id: uuid.UUID,
    code: str,
    name: str,
    plan: str,
    period: int,
) -> None:
    """Tell the partner its perk was given, naming its customer when the member is linked to it."""
    link = await PartnerRepository(uow.session).get_member_link(partner.id, member_id)
    await emit_for_member(
        uow,
        PerkGranted(
            perk_id=perk_id,
            partner=partner.code,
            code=code,
            name=name,
            plan=plan,
            period=period,
            partner_customer_ref=None if link is None else link.partner_customer_ref,
        ),
        member_id,
        partner.id,
    )


def perk_view(
    perk: PartnerPerk, partner_code: str, customer_ref: str | None, *, vault: Vault, pooled: str | None
) -> PerkView:
    """The perk as shown; `pooled` is the encrypted pool code it was given with, if any."""
    return PerkView(
        code=perk.code if pooled is None else vault.decrypt(pooled),
        partner=partner_code,
        name=perk.name,
        plan=perk.plan_code,
        period=perk.period_number,
        source=perk.source,
        status=perk.status,
        partner_customer_ref=customer_ref,
        granted_at=perk.granted_at,
        redeemed_at=perk.redeemed_at,
    )
