"""Queries for partners, link codes and links."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.db.constraints import flush_unique
from loyalty_api.partners.models import Partner, PartnerLink, PartnerLinkCode


class PartnerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_partner(self, partner: Partner) -> None:
        self.session.add(partner)
        await flush_unique(self.session)

    async def get_by_code(self, code: str) -> Partner | None:
        return await self.session.scalar(select(Partner).where(Partner.code == code))

    async def get(self, partner_id: uuid.UUID) -> Partner | None:
        return await self.session.get(Partner, partner_id)

    async def list_partners(self, *, after_id: uuid.UUID | None, limit: int) -> Sequence[Partner]:
        query = select(Partner).order_by(Partner.id).limit(limit)
        if after_id is not None:
            query = query.where(Partner.id > after_id)
        return (await self.session.scalars(query)).all()

    async def save(self) -> None:
        await flush_unique(self.session)

    async def insert_code(self, code: PartnerLinkCode) -> None:
        self.session.add(code)
        await flush_unique(self.session)

    async def take_code(self, code_hash: str, partner_id: uuid.UUID, now: datetime) -> PartnerLinkCode | None:
        """Mark the code used and return it, if it is this partner's, unused and unexpired; one statement,
        so two partners' systems racing with one code cannot both have it."""
        taken = await self.session.execute(
            update(PartnerLinkCode)
            .where(
                PartnerLinkCode.code_hash == code_hash,
                PartnerLinkCode.partner_id == partner_id,
                PartnerLinkCode.used_at.is_(None),
                PartnerLinkCode.expires_at > now,
            )
            .values(used_at=now)
            .returning(PartnerLinkCode.id)
        )
        code_id = taken.scalar_one_or_none()
        return None if code_id is None else await self.session.get(PartnerLinkCode, code_id)

    async def insert_link(self, link: PartnerLink) -> None:
        self.session.add(link)
        await flush_unique(self.session)

    async def get_link(self, partner_id: uuid.UUID, ref: str) -> PartnerLink | None:
        return await self.session.scalar(
            select(PartnerLink).where(
                PartnerLink.partner_id == partner_id, PartnerLink.partner_customer_ref == ref
            )
        )

    async def get_member_link(self, partner_id: uuid.UUID, member_id: uuid.UUID) -> PartnerLink | None:
        return await self.session.scalar(
            select(PartnerLink).where(
                PartnerLink.partner_id == partner_id, PartnerLink.member_id == member_id
            )
        )

    async def list_member_links(self, member_id: uuid.UUID) -> Sequence[tuple[PartnerLink, Partner]]:
        rows = await self.session.execute(
            select(PartnerLink, Partner)
            .join(Partner, Partner.id == PartnerLink.partner_id)
            .where(PartnerLink.member_id == member_id)
            .order_by(PartnerLink.id)
        )
        return [(link, partner) for link, partner in rows.all()]

    async def delete_link(self, link_id: uuid.UUID) -> None:
        await self.session.execute(delete(PartnerLink).where(PartnerLink.id == link_id))
