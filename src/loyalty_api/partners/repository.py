"""All queries of partners' records: partners, link codes, links, exchanges, joint-benefit uses, perks and
their pools."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Table, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.db.constraints import flush_unique
from loyalty_api.db.dialect import insert_or_ignore
from loyalty_api.members.models import Member, MemberStatus
from loyalty_api.partners.models import (
    EXCHANGE_PENDING,
    PERK_OWED,
    Partner,
    PartnerBenefitUse,
    PartnerExchange,
    PartnerLink,
    PartnerLinkCode,
    PartnerPerk,
    PartnerPerkCode,
)

_PERKS = cast(Table, PartnerPerk.__table__)
_PERK_CODES = cast(Table, PartnerPerkCode.__table__)
# What an erased member's exchanges keep of the partner's customer ref (the column is required).
ERASED_REF = "erased"
# Exchanges that count against the daily limits: all but those given back.
_COUNTED = ("pending", "confirmed", "completed")


class PartnerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_partner(self, partner: Partner) -> None:
        self.session.add(partner)
        await flush_unique(self.session)

    async def get_by_code(self, code: str) -> Partner | None:
        return await self.session.scalar(select(Partner).where(Partner.code == code))

    async def lock_by_code(self, code: str) -> Partner | None:
        """The partner under lock until commit, to be replaced (None: there is none). On PostgreSQL a replace
        racing another waits here for it, then reads what it left; SQLite's `BEGIN IMMEDIATE` has serialized
        them already. FOR NO KEY UPDATE, as a plan's replace: the code and id stay, so a link, exchange or key
        whose foreign key takes a key share need not wait for it."""
        return await self.session.scalar(
            select(Partner)
            .where(Partner.code == code)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )

    async def get(self, partner_id: uuid.UUID) -> Partner | None:
        return await self.session.get(Partner, partner_id)

    async def list_active(self) -> Sequence[Partner]:
        return (await self.session.scalars(select(Partner).where(Partner.status == "active"))).all()

    async def partners_of_members(self, member_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        """The partners each member is linked to, for those linked to any."""
        rows = await self.session.execute(
            select(PartnerLink.member_id, PartnerLink.partner_id).where(PartnerLink.member_id.in_(member_ids))
        )
        found: dict[uuid.UUID, list[uuid.UUID]] = {}
        for member_id, partner_id in rows.all():
            found.setdefault(member_id, []).append(partner_id)
        return found

    async def list_partners(self, *, after_id: uuid.UUID | None, limit: int) -> Sequence[Partner]:
        query = select(Partner).order_by(Partner.id).limit(limit)
        if after_id is not None:
            query = query.where(Partner.id > after_id)
        return (await self.session.scalars(query)).all()

    async def save(self) -> None:
        await flush_unique(self.session)

    async def purge_codes(self, made_before: uuid.UUID, *, limit: int) -> int:
        """Delete up to `limit` link codes with ids below `made_before` (issued before that instant)."""
        old = select(PartnerLinkCode.id).where(PartnerLinkCode.id < made_before).limit(limit)
        result = await self.session.execute(delete(PartnerLinkCode).where(PartnerLinkCode.id.in_(old)))
        return int(getattr(result, "rowcount", 0) or 0)

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

    async def get_used_code(self, code_hash: str, partner_id: uuid.UUID) -> PartnerLinkCode | None:
        return await self.session.scalar(
            select(PartnerLinkCode).where(
                PartnerLinkCode.code_hash == code_hash,
                PartnerLinkCode.partner_id == partner_id,
                PartnerLinkCode.used_at.is_not(None),
            )
        )

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

    async def list_members_links(
        self, member_ids: Sequence[uuid.UUID]
    ) -> Sequence[tuple[PartnerLink, Partner]]:
        """The links of these members, each with its partner, in one statement."""
        rows = await self.session.execute(
            select(PartnerLink, Partner)
            .join(Partner, Partner.id == PartnerLink.partner_id)
            .where(PartnerLink.member_id.in_(member_ids))
            .order_by(PartnerLink.id)
        )
        return [(link, partner) for link, partner in rows.all()]

    async def get_benefit_use(self, partner_id: uuid.UUID, use_ref: str) -> PartnerBenefitUse | None:
        return await self.session.scalar(
            select(PartnerBenefitUse).where(
                PartnerBenefitUse.partner_id == partner_id, PartnerBenefitUse.use_ref == use_ref
            )
        )

    async def insert_benefit_use(self, use: PartnerBenefitUse) -> None:
        self.session.add(use)
        await flush_unique(self.session)

    async def count_benefit_uses(self, partner_id: uuid.UUID, start: datetime, end: datetime) -> int:
        found = await self.session.scalar(
            select(func.count(PartnerBenefitUse.id)).where(
                PartnerBenefitUse.partner_id == partner_id,
                PartnerBenefitUse.created_at >= start,
                PartnerBenefitUse.created_at < end,
            )
        )
        return int(found or 0)

    async def list_member_benefit_uses(
        self, member_id: uuid.UUID, *, after_id: uuid.UUID | None, limit: int
    ) -> Sequence[tuple[PartnerBenefitUse, str]]:
        """The member's uses of joint benefits at partners after `after_id`, oldest first, with the partner's
        code."""
        query = (
            select(PartnerBenefitUse, Partner.code)
            .join(Partner, Partner.id == PartnerBenefitUse.partner_id)
            .where(PartnerBenefitUse.member_id == member_id)
        )
        if after_id is not None:
            query = query.where(PartnerBenefitUse.id > after_id)
        rows = await self.session.execute(query.order_by(PartnerBenefitUse.id).limit(limit))
        return [(use, code) for use, code in rows.all()]

    async def list_member_link_codes(
        self, member_id: uuid.UUID, *, after_id: uuid.UUID | None, limit: int
    ) -> Sequence[tuple[PartnerLinkCode, str]]:
        """The link codes issued for the member (each a consent to one partner) after `after_id`, oldest
        first, with the partner's code."""
        query = (
            select(PartnerLinkCode, Partner.code)
            .join(Partner, Partner.id == PartnerLinkCode.partner_id)
            .where(PartnerLinkCode.member_id == member_id)
        )
        if after_id is not None:
            query = query.where(PartnerLinkCode.id > after_id)
        rows = await self.session.execute(query.order_by(PartnerLinkCode.id).limit(limit))
        return [(code, partner) for code, partner in rows.all()]

    async def delete_link(self, link_id: uuid.UUID) -> bool:
        """False when there was no such link any more."""
        result = await self.session.execute(delete(PartnerLink).where(PartnerLink.id == link_id))
        return bool(getattr(result, "rowcount", 0))

    async def delete_member_codes(self, member_id: uuid.UUID) -> None:
        """For an erasure, before anything else changes the member's row: their link codes go. A link being
        made with one has the code's row locked, so this waits for that link to commit, and the links
        `forget_member` reads next include it (PostgreSQL reads each statement afresh)."""
        await self.session.execute(delete(PartnerLinkCode).where(PartnerLinkCode.member_id == member_id))

    async def forget_member(self, member_id: uuid.UUID) -> list[tuple[uuid.UUID, str, str]]:
        """For an erasure, once `delete_member_codes` has run: the member's links go, and their exchanges
        forget the partner's customer ref (the amounts stay, for settlement). The partners they were linked
        to (id, code) and the ref each knew them by."""
        linked = await self.session.execute(
            select(Partner.id, Partner.code, PartnerLink.partner_customer_ref)
            .join(PartnerLink, PartnerLink.partner_id == Partner.id)
            .where(PartnerLink.member_id == member_id)
            .order_by(Partner.code)
        )
        partners = [(partner_id, code, ref) for partner_id, code, ref in linked.all()]
        await self.session.execute(delete(PartnerLink).where(PartnerLink.member_id == member_id))
        await self.session.execute(
            update(PartnerExchange)
            .where(PartnerExchange.member_id == member_id)
            .values(partner_customer_ref=ERASED_REF)
        )
        return partners


class ExchangeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_partner(self, partner_id: uuid.UUID) -> Partner:
        """Hold the partner's row until commit and read it afresh: its exchanges go one at a time, so the
        day's sums that the limits are checked against stay true until the exchange is written (SQLite writes
        one at a time), and the terms and status are those an operator's change that was waited for left."""
        found = await self.session.scalar(
            select(Partner)
            .where(Partner.id == partner_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert found is not None, "a partner is never deleted"
        return found

    async def exchanged_since(
        self,
        partner_id: uuid.UUID,
        direction: str,
        since: datetime,
        now: datetime,
        *,
        member_id: uuid.UUID | None = None,
    ) -> int:
        """The points exchanged since `since`; a pending exchange past its time is given back, so it counts
        no more, whether or not the time-out job has got to it."""
        query = select(func.coalesce(func.sum(PartnerExchange.points), 0)).where(
            PartnerExchange.partner_id == partner_id,
            PartnerExchange.direction == direction,
            PartnerExchange.status.in_(_COUNTED),
            PartnerExchange.created_at >= since,
            or_(
                PartnerExchange.status != "pending",
                PartnerExchange.expires_at.is_(None),
                PartnerExchange.expires_at > now,
            ),
        )
        if member_id is not None:
            query = query.where(PartnerExchange.member_id == member_id)
        return int(await self.session.scalar(query) or 0)

    async def insert(self, exchange: PartnerExchange) -> None:
        self.session.add(exchange)
        await flush_unique(self.session)

    async def get(self, exchange_id: uuid.UUID) -> PartnerExchange | None:
        return await self.session.get(PartnerExchange, exchange_id, populate_existing=True)

    async def get_by_partner_ref(self, partner_id: uuid.UUID, partner_ref: str) -> PartnerExchange | None:
        return await self.session.scalar(
            select(PartnerExchange).where(
                PartnerExchange.partner_id == partner_id, PartnerExchange.partner_ref == partner_ref
            )
        )

    async def resolve(
        self, exchange_id: uuid.UUID, status: str, now: datetime, *, due_before: datetime | None = None
    ) -> bool:
        """Move a pending exchange to `status`, in one statement, so it is resolved once however many try;
        with `due_before`, only if it does not expire by then. False when it was not pending."""
        query = update(PartnerExchange).where(PartnerExchange.id == exchange_id, EXCHANGE_PENDING)
        if due_before is not None:
            query = query.where(PartnerExchange.expires_at > due_before)
        result = await self.session.execute(
            query.values(status=status, resolved_at=now).returning(PartnerExchange.id)
        )
        return result.scalar_one_or_none() is not None

    async def set_return_entry(self, exchange_id: uuid.UUID, entry_id: uuid.UUID) -> None:
        await self.session.execute(
            update(PartnerExchange).where(PartnerExchange.id == exchange_id).values(return_entry_id=entry_id)
        )

    async def list_due(
        self, now: datetime, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[tuple[datetime, uuid.UUID, uuid.UUID]]:
        """(expires at, id, member id) of pending exchanges past their time, in that order, after `after`.
        Read, not locked: the time-out job locks each one's member first (exchanges.expire_exchanges)."""
        query = select(PartnerExchange.expires_at, PartnerExchange.id, PartnerExchange.member_id).where(
            EXCHANGE_PENDING, PartnerExchange.expires_at <= now
        )
        if after is not None:
            at, after_id = after
            query = query.where(
                (PartnerExchange.expires_at > at)
                | and_(PartnerExchange.expires_at == at, PartnerExchange.id > after_id)
            )
        rows = await self.session.execute(
            query.order_by(PartnerExchange.expires_at, PartnerExchange.id).limit(limit)
        )
        return [(at, exchange_id, member_id) for at, exchange_id, member_id in rows.all() if at is not None]

    async def customer_refs_of(self, member_id: uuid.UUID) -> list[str]:
        """The partners' customer refs the member's exchanges keep (as linked then: the link may have
        ended since)."""
        rows = await self.session.scalars(
            select(PartnerExchange.partner_customer_ref)
            .distinct()
            .where(PartnerExchange.member_id == member_id)
        )
        return list(rows.all())

    async def list_member_exchanges(
        self, member_id: uuid.UUID, *, before_id: uuid.UUID | None, limit: int
    ) -> Sequence[tuple[PartnerExchange, str]]:
        query = (
            select(PartnerExchange, Partner.code)
            .join(Partner, Partner.id == PartnerExchange.partner_id)
            .where(PartnerExchange.member_id == member_id)
            .order_by(PartnerExchange.id.desc())
            .limit(limit)
        )
        if before_id is not None:
            query = query.where(PartnerExchange.id < before_id)
        return [(exchange, code) for exchange, code in (await self.session.execute(query)).all()]


def _owed_to_active(partner_id: uuid.UUID, pool: str) -> tuple[ColumnElement[bool], ...]:
    """The pool's perks owed to members who are active (joined as `Member`): a suspended member's wait until
    they are active again; a closed or erased member's are deleted with the closing."""
    return (
        PartnerPerk.partner_id == partner_id,
        PartnerPerk.pool == pool,
        PERK_OWED,
        Member.status == MemberStatus.active,
    )


class PerkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_any_ciphertext(self) -> str | None:
        """One pooled code, encrypted, of any partner (None: no partner uploaded any)."""
        query = select(PartnerPerkCode.code_encrypted).limit(1)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def insert_if_new(self, row: dict[str, object]) -> bool:
        """Write the perk unless its issue key is taken (the period was granted before); True when written."""
        result = await self.session.execute(
            insert_or_ignore(self.session, _PERKS, ["issue_key"]).values(row).returning(_PERKS.c.id)
        )
        return result.scalar_one_or_none() is not None

    async def share_partner(self, partner_id: uuid.UUID) -> None:
        """Hold the partner's row against an upload of codes until commit (FOR KEY SHARE: grants do not wait
        for each other), so a perk found owed here is seen by the upload that comes after it."""
        await self.session.execute(
            select(Partner.id).where(Partner.id == partner_id).with_for_update(read=True, key_share=True)
        )

    async def lock_partner(self, partner_id: uuid.UUID) -> None:
        """Hold the partner's row until commit: an upload waits for the grants in flight and they for it."""
        await self.session.execute(select(Partner.id).where(Partner.id == partner_id).with_for_update())

    async def take_pool_code(self, partner_id: uuid.UUID, pool: str, perk_id: uuid.UUID) -> str | None:
        """Give the oldest unused code of the pool to the perk, in one statement; its encrypted form, or None
        when the pool is empty. Two grants at once never take the same code: on PostgreSQL each skips the
        code the other has locked; SQLite writes one at a time."""
        unused = (
            select(PartnerPerkCode.id)
            .where(
                PartnerPerkCode.partner_id == partner_id,
                PartnerPerkCode.pool == pool,
                PartnerPerkCode.perk_id.is_(None),
            )
            .order_by(PartnerPerkCode.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        taken = await self.session.execute(
            update(PartnerPerkCode)
            .where(PartnerPerkCode.id == unused, PartnerPerkCode.perk_id.is_(None))
            .values(perk_id=perk_id)
            .returning(PartnerPerkCode.code_encrypted)
        )
        return taken.scalar_one_or_none()

    async def mark_granted(self, perk_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(PartnerPerk).where(PartnerPerk.id == perk_id).values(status="issued", granted_at=now)
        )

    async def insert_pool_codes(self, rows: Sequence[dict[str, object]]) -> int:
        """Add the codes to the pool, leaving out those the partner uploaded before; how many were added."""
        result = await self.session.execute(
            insert_or_ignore(self.session, _PERK_CODES, ["partner_id", "code_hash"])
            .values(list(rows))
            .returning(_PERK_CODES.c.id)
        )
        return len(result.all())

    async def lock_owed(self, partner_id: uuid.UUID, pool: str, *, limit: int) -> Sequence[PartnerPerk]:
        """The pool's oldest owed perks of active members, locked (those another upload holds are skipped;
        the members' rows are read, not locked)."""
        found = await self.session.scalars(
            select(PartnerPerk)
            .join(Member, Member.id == PartnerPerk.member_id)
            .where(*_owed_to_active(partner_id, pool))
            .order_by(PartnerPerk.id)
            .limit(limit)
            .with_for_update(of=PartnerPerk, skip_locked=True)
        )
        return found.all()

    async def lock_owed_of_member(self, member_id: uuid.UUID) -> Sequence[PartnerPerk]:
        """The member's perks owed from pools, oldest first, locked."""
        found = await self.session.scalars(
            select(PartnerPerk)
            .where(PartnerPerk.member_id == member_id, PERK_OWED)
            .order_by(PartnerPerk.id)
            .with_for_update()
        )
        return found.all()

    async def delete_owed_of_member(self, member_id: uuid.UUID) -> int:
        """For a member closed or erased: their perks still owed go (never given, never told to the
        partner); how many."""
        result = await self.session.execute(
            delete(PartnerPerk).where(PartnerPerk.member_id == member_id, PERK_OWED).returning(PartnerPerk.id)
        )
        return len(result.all())

    async def end_issued_of_member(self, member_id: uuid.UUID) -> int:
        """For an erasure: the member's perks issued and not redeemed end (`ended`), as their unused coupons
        expire; kept, so the settlement's count of perks granted does not move, and a pooled one keeps its
        code, so that code is never given to anyone else. How many."""
        result = await self.session.execute(
            update(PartnerPerk)
            .where(PartnerPerk.member_id == member_id, PartnerPerk.status == "issued")
            .values(status="ended")
            .returning(PartnerPerk.id)
        )
        return len(result.all())

    async def pool_counts(self, partner_id: uuid.UUID, pool: str) -> tuple[int, int]:
        """The pool's unused codes, and the perks owed from it."""
        unused = await self.session.scalar(
            select(func.count(PartnerPerkCode.id)).where(
                PartnerPerkCode.partner_id == partner_id,
                PartnerPerkCode.pool == pool,
                PartnerPerkCode.perk_id.is_(None),
            )
        )
        owed = await self.session.scalar(
            select(func.count(PartnerPerk.id))
            .join(Member, Member.id == PartnerPerk.member_id)
            .where(*_owed_to_active(partner_id, pool))
        )
        return int(unused or 0), int(owed or 0)

    async def find_perk(self, partner_id: uuid.UUID, code: str | None, code_hash: str) -> uuid.UUID | None:
        """The partner's perk given with this code: one of ours (`code`, None when it cannot be one), or one
        from its pool (by the code's blind index)."""
        if code is not None:
            ours = await self.session.scalar(
                select(PartnerPerk.id).where(PartnerPerk.partner_id == partner_id, PartnerPerk.code == code)
            )
            if ours is not None:
                return ours
        return await self.session.scalar(
            select(PartnerPerkCode.perk_id).where(
                PartnerPerkCode.partner_id == partner_id,
                PartnerPerkCode.code_hash == code_hash,
                PartnerPerkCode.perk_id.is_not(None),
            )
        )

    async def redeem(self, perk_id: uuid.UUID, now: datetime) -> PartnerPerk | None:
        """Mark the issued perk redeemed, in one statement; None when it is not issued."""
        found = await self.session.execute(
            update(PartnerPerk)
            .where(PartnerPerk.id == perk_id, PartnerPerk.status == "issued")
            .values(status="redeemed", redeemed_at=now)
            .returning(PartnerPerk.id)
        )
        return None if found.scalar_one_or_none() is None else await self.get(perk_id)

    async def get(self, perk_id: uuid.UUID) -> PartnerPerk | None:
        return await self.session.get(PartnerPerk, perk_id, populate_existing=True)

    async def pool_code_of(self, perk_id: uuid.UUID) -> str | None:
        """The encrypted pool code the perk was given with, if it was."""
        return await self.session.scalar(
            select(PartnerPerkCode.code_encrypted).where(PartnerPerkCode.perk_id == perk_id)
        )

    async def list_member_perks(
        self, member_id: uuid.UUID, *, before_id: uuid.UUID | None, limit: int
    ) -> Sequence[tuple[PartnerPerk, str, str | None]]:
        """The member's perks, newest first, each with its partner's code and its encrypted pool code."""
        query = (
            select(PartnerPerk, Partner.code, PartnerPerkCode.code_encrypted)
            .join(Partner, Partner.id == PartnerPerk.partner_id)
            .outerjoin(PartnerPerkCode, PartnerPerkCode.perk_id == PartnerPerk.id)
            .where(PartnerPerk.member_id == member_id)
            .order_by(PartnerPerk.id.desc())
            .limit(limit)
        )
        if before_id is not None:
            query = query.where(PartnerPerk.id < before_id)
        return [(perk, code, pooled) for perk, code, pooled in (await self.session.execute(query)).all()]

    async def counts(self, partner_id: uuid.UUID, start: datetime, end: datetime) -> tuple[int, int]:
        """How many of the partner's perks were granted (ours and pooled alike; an owed one once its code
        came), and how many redeemed, in [start, end)."""
        granted = await self.session.scalar(
            select(func.count(PartnerPerk.id)).where(
                PartnerPerk.partner_id == partner_id,
                PartnerPerk.granted_at >= start,
                PartnerPerk.granted_at < end,
            )
        )
        redeemed = await self.session.scalar(
            select(func.count(PartnerPerk.id)).where(
                PartnerPerk.partner_id == partner_id,
                PartnerPerk.redeemed_at >= start,
                PartnerPerk.redeemed_at < end,
            )
        )
        return int(granted or 0), int(redeemed or 0)
