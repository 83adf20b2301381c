"""The pools of codes partners upload for the perks our paid plans include from them: adding codes (each kept
encrypted, a code uploaded before left out), and granting the perks owed while the pool was empty, oldest
first, from the codes that came."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from loyalty_api.db.ids import new_id
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.partners.errors import PerkPoolNotFound
from loyalty_api.partners.models import Partner
from loyalty_api.partners.perks import announce_perk, pool_code_hash, take_pool_code
from loyalty_api.partners.repository import PerkRepository
from loyalty_api.partners.service import active_partner
from loyalty_api.plan_catalogue.service import get_catalogue


@dataclass(frozen=True, slots=True)
class PoolStatus:
    perk: str
    available: int  # codes not given yet
    owed: int  # perks waiting for a code


@dataclass(frozen=True, slots=True)
class PoolUpload:
    perk: str
    added: int
    duplicates: int  # codes uploaded before, or repeated in the upload: left out
    granted: int  # owed perks the new codes went to
    available: int
    owed: int


async def _pool_partner(uow: UnitOfWork, partner_id: uuid.UUID, perk: str) -> Partner:
    """The partner of the key, if a paid plan offers its `perk` from a pool; PerkPoolNotFound otherwise."""
    partner = await active_partner(uow, partner_id)
    catalogue = await get_catalogue(uow)
    if not any(
        offer.partner == partner.code and offer.perk == perk
        for plan in catalogue.plans
        for offer in plan.partner_perks
    ):
        raise PerkPoolNotFound()
    return partner


async def pool_status(uow: UnitOfWork, partner_id: uuid.UUID, perk: str) -> PoolStatus:
    partner = await _pool_partner(uow, partner_id, perk)
    available, owed = await PerkRepository(uow.session).pool_counts(partner.id, perk)
    return PoolStatus(perk=perk, available=available, owed=owed)


async def upload_codes(
    uow: UnitOfWork, partner_id: uuid.UUID, *, perk: str, codes: Sequence[str]
) -> PoolUpload:
    """Add the partner's codes to the perk's pool, and give the perks owed from it their codes, oldest first;
    each of those is told to the partner (`partner.perk_granted`) as any grant is."""
    partner = await _pool_partner(uow, partner_id, perk)
    repo = PerkRepository(uow.session)
    # Grants in flight finish first, and those after see the new codes: no perk stays owed beside them.
    await repo.lock_partner(partner.id)
    now = uow.clock.now()
    added = await repo.insert_pool_codes(
        [
            {
                "id": new_id(),
                "partner_id": partner.id,
                "pool": perk,
                "code_hash": pool_code_hash(uow.vault, code),
                "code_encrypted": uow.vault.encrypt(code),
                "perk_id": None,
                "created_at": now,
            }
            for code in dict.fromkeys(codes)
        ]
    )
    # Every unused code may go to the owed perks, not only those this upload added: a code left unused
    # beside an owed perk (an upload while its member was suspended, their return while the partner was)
    # goes now, oldest perk first, even with an upload that adds nothing new.
    available, _ = await repo.pool_counts(partner.id, perk)
    granted = 0
    for owed in await repo.lock_owed(partner.id, perk, limit=available) if available else ():
        code = await take_pool_code(uow, partner, perk, owed.id)
        if code is None:
            break
        await announce_perk(
            uow,
            partner,
            perk_id=owed.id,
            member_id=owed.member_id,
            code=code,
            name=owed.name,
            plan=owed.plan_code,
            period=owed.period_number,
        )
        granted += 1
    available, left = await repo.pool_counts(partner.id, perk)
    return PoolUpload(
        perk=perk,
        added=added,
        duplicates=len(codes) - added,
        granted=granted,
        available=available,
        owed=left,
    )
