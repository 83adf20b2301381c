"""Partners and joint membership: the registry, consented links, joint-plan perks. What a partner sees of a
member and does for them is in `coalition`.

A partner's key acts for that partner alone: every read and change names the member by the partner's own
customer reference, looked up among that partner's links, so a member not linked to it does not exist for it
(404, the same as a reference nobody uses).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.auth.service import IssuedKey, create_key
from loyalty_api.clock import format_instant
from loyalty_api.coupons.codes import normalize_code
from loyalty_api.db.changes import column_values
from loyalty_api.db.constraints import DuplicateKey
from loyalty_api.db.ids import first_id_at
from loyalty_api.db.pagination import Page, decode_cursor, page_of, scope_of
from loyalty_api.db.retention import purge_in_batches
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.grants.repository import BenefitRepository
from loyalty_api.members.errors import MemberNotActive, MemberNotFound
from loyalty_api.members.models import ERASED, MemberStatus
from loyalty_api.members.repository import MemberRepository
from loyalty_api.members.service import require_member
from loyalty_api.outbox.service import emit_for_member, emit_for_programme
from loyalty_api.partners.codes import code_hash, generate_code
from loyalty_api.partners.errors import (
    AlreadyLinked,
    LinkCodeInvalid,
    LinkNotFound,
    PartnerExists,
    PartnerNotActive,
    PartnerNotFound,
    PerkAlreadyRedeemed,
    PerkNotFound,
)
from loyalty_api.partners.events import PartnerChanged, PartnerLinked, PartnerUnlinked
from loyalty_api.partners.joint import JOINT_CACHE_KEY
from loyalty_api.partners.models import Partner, PartnerLink, PartnerLinkCode
from loyalty_api.partners.perks import PerkView, perk_view, pool_code_hash
from loyalty_api.partners.repository import PartnerRepository, PerkRepository
from loyalty_api.plan_catalogue.service import get_catalogue
from loyalty_api.tiers.service import get_ladder

PARTNERS = scope_of("partners")  # the partner list's cursors carry it

# What a member may let a partner see: `basic` (tier, paid membership) always, `points` if they choose.
Grant = Literal["basic", "points"]
LINK_CODE_LIFETIME = timedelta(minutes=10)
# Used or expired, a code is kept a day for the record, then purged.
LINK_CODE_KEPT = timedelta(days=1)
PartnerStatus = Literal["active", "suspended"]


@dataclass(frozen=True, slots=True)
class Terms:
    """What a partner offers (see the Partner model); None: not offered, or no limit."""

    earn_rate: Decimal | None = None
    exchange_out_rate: Decimal | None = None
    exchange_in_rate: Decimal | None = None
    daily_exchange_limit: int | None = None
    member_daily_exchange_limit: int | None = None
    exchange_timeout_seconds: int = 3600
    # Joint benefits, for linked members on these tiers (empty: all) holding one of these plans (empty: none
    # needed).
    benefit_ids: Sequence[uuid.UUID] = ()
    benefit_tiers: Sequence[str] = ()
    benefit_plans: Sequence[str] = ()

    def apply(self, partner: Partner) -> None:
        partner.earn_rate = self.earn_rate
        partner.exchange_out_rate = self.exchange_out_rate
        partner.exchange_in_rate = self.exchange_in_rate
        partner.daily_exchange_limit = self.daily_exchange_limit
        partner.member_daily_exchange_limit = self.member_daily_exchange_limit
        partner.exchange_timeout_seconds = self.exchange_timeout_seconds
        partner.benefit_tiers = list(dict.fromkeys(self.benefit_tiers))
        partner.benefit_plans = list(dict.fromkeys(self.benefit_plans))


async def _check_terms(uow: UnitOfWork, terms: Terms) -> None:
    """The joint benefits, tiers and plans the terms name must exist."""
    found = {b.id for b in await BenefitRepository(uow.session).list_by_ids(terms.benefit_ids)}
    if missing := [str(b) for b in terms.benefit_ids if b not in found]:
        raise InvalidField("benefit_ids", f"no such benefit: {', '.join(missing)}")
    tiers = {tier.code for tier in (await get_ladder(uow)).tiers}
    if missing := [code for code in terms.benefit_tiers if code not in tiers]:
        raise InvalidField("benefit_tiers", f"no such tier: {', '.join(missing)}")
    catalogue = await get_catalogue(uow)
    if missing := [code for code in terms.benefit_plans if catalogue.by_code(code) is None]:
        raise InvalidField("benefit_plans", f"no such plan: {', '.join(missing)}")


async def _grant(uow: UnitOfWork, partner: Partner, terms: Terms) -> None:
    await BenefitRepository(uow.session).replace_grants("partner", partner.id, terms.benefit_ids)
    await uow.forget_cached(JOINT_CACHE_KEY)


@dataclass(frozen=True, slots=True)
class PartnerView:
    """A partner as operators read it, with the joint benefits it gives."""

    id: uuid.UUID
    code: str
    name: str
    status: str
    earn_rate: Decimal | None
    exchange_out_rate: Decimal | None
    exchange_in_rate: Decimal | None
    daily_exchange_limit: int | None
    member_daily_exchange_limit: int | None
    exchange_timeout_seconds: int
    benefit_ids: list[uuid.UUID]
    benefit_tiers: list[str]
    benefit_plans: list[str]
    created_at: datetime
    updated_at: datetime


async def _views(uow: UnitOfWork, rows: Sequence[Partner]) -> list[PartnerView]:
    grants = await BenefitRepository(uow.session).list_grants([("partner", p.id) for p in rows])
    return [
        PartnerView(
            id=p.id,
            code=p.code,
            name=p.name,
            status=p.status,
            earn_rate=p.earn_rate,
            exchange_out_rate=p.exchange_out_rate,
            exchange_in_rate=p.exchange_in_rate,
            daily_exchange_limit=p.daily_exchange_limit,
            member_daily_exchange_limit=p.member_daily_exchange_limit,
            exchange_timeout_seconds=p.exchange_timeout_seconds,
            benefit_ids=[b.id for _, source_id, b in grants if source_id == p.id],
            benefit_tiers=list(p.benefit_tiers),
            benefit_plans=list(p.benefit_plans),
            created_at=p.created_at,
            updated_at=p.updated_at,
        )
        for p in rows
    ]


@dataclass(frozen=True, slots=True)
class IssuedLinkCode:
    code: str
    partner: str
    grants: list[str]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LinkView:
    partner: str
    partner_name: str
    partner_customer_ref: str
    grants: list[str]
    linked_at: datetime


@contextmanager
def _duplicate_code() -> Iterator[None]:
    try:
        yield
    except DuplicateKey as exc:
        if exc.constraint == "uq_partners__code":
            raise PartnerExists() from exc
        raise


async def create_partner_key(
    uow: UnitOfWork,
    partner: uuid.UUID | str,
    *,
    name: str,
    scopes: Sequence[Scope] = (Scope.partner,),
    rate_limit: str | None = None,
    lifetime: timedelta | None = None,
    allowed_networks: Sequence[str] | None = None,
    maker: Principal | None = None,
) -> IssuedKey:
    """An API key bound to the partner (its id, or the code the operator gave it), for its own systems;
    PartnerNotFound when there is no such partner. `maker` bounds it as auth.service.create_key says."""
    repo = PartnerRepository(uow.session)
    found = await (repo.get(partner) if isinstance(partner, uuid.UUID) else repo.get_by_code(partner))
    if found is None:
        raise PartnerNotFound()
    return await create_key(
        uow,
        name=name,
        scopes=scopes,
        partner_id=found.id,
        rate_limit=rate_limit,
        lifetime=lifetime,
        allowed_networks=allowed_networks,
        maker=maker,
    )


async def create_partner(uow: UnitOfWork, *, code: str, name: str, terms: Terms) -> PartnerView:
    repo = PartnerRepository(uow.session)
    if await repo.get_by_code(code) is not None:
        raise PartnerExists()
    await _check_terms(uow, terms)
    now = uow.clock.now()
    partner = Partner(code=code, name=name, status="active", created_at=now, updated_at=now)
    terms.apply(partner)
    with _duplicate_code():
        await repo.insert_partner(partner)
    await _grant(uow, partner, terms)
    await _announce(uow, partner, "created")
    [view] = await _views(uow, [partner])
    return view


async def get_partner(uow: UnitOfWork, code: str) -> Partner:
    found = await PartnerRepository(uow.session).get_by_code(code)
    if found is None:
        raise PartnerNotFound()
    return found


async def read_partner(uow: UnitOfWork, code: str) -> PartnerView:
    [view] = await _views(uow, [await get_partner(uow, code)])
    return view


async def list_partners(uow: UnitOfWork, *, limit: int, cursor: str | None) -> Page[PartnerView]:
    rows = await PartnerRepository(uow.session).list_partners(
        after_id=decode_cursor(cursor, PARTNERS), limit=limit + 1
    )
    page = page_of(rows, limit, lambda p: p.id, PARTNERS)
    return page.with_items(await _views(uow, page.items))


async def update_partner(
    uow: UnitOfWork, code: str, *, name: str, status: PartnerStatus, terms: Terms
) -> PartnerView:
    """Rename, suspend or change the terms of a partner. A suspended partner's keys reach no member until it
    is active again, but may still answer the exchanges out pending with it (coalition.exchanges). New terms
    apply to what comes next: pending exchanges keep the rate and time they were made with."""
    # Locked, as a plan's or a reward's replace is: read without it, replaces at once each compared with the
    # partner as it was before any of them, and each rewrote the grants and announced partner.changed.
    partner = await PartnerRepository(uow.session).lock_by_code(code)
    if partner is None:
        raise PartnerNotFound()
    await uow.subject_locked()
    await _check_terms(uow, terms)
    before = column_values(partner)
    granted = await BenefitRepository(uow.session).granted_ids("partner", partner.id)
    partner.name, partner.status = name, status
    terms.apply(partner)
    if column_values(partner) == before and set(terms.benefit_ids) == granted:
        # Sent again as it is (db/changes.py): nothing to write, forget or announce.
        [view] = await _views(uow, [partner])
        return view
    partner.updated_at = uow.clock.now()
    await PartnerRepository(uow.session).save()
    await _grant(uow, partner, terms)
    await _announce(uow, partner, "replaced")
    [view] = await _views(uow, [partner])
    return view


async def _announce(uow: UnitOfWork, partner: Partner, change: Literal["created", "replaced"]) -> None:
    event = PartnerChanged(partner=partner.code, name=partner.name, status=partner.status, change=change)
    await emit_for_programme(uow, event, partner.code)


async def bound_partner(uow: UnitOfWork, partner_id: uuid.UUID) -> Partner:
    """The partner a key is bound to, active or suspended. Only for answering what the partner was asked
    before a suspension (its exchanges out pending): refusing those would let their time run out and give the
    member back points the partner may have credited already; and for its settlement statements, which it
    needs to settle up what moved before. Anything else goes through `active_partner`."""
    partner = await PartnerRepository(uow.session).get(partner_id)
    if partner is None:  # a key bound to a partner that does not exist reaches nothing
        raise PartnerNotFound()
    return partner


async def active_partner(uow: UnitOfWork, partner_id: uuid.UUID) -> Partner:
    partner = await bound_partner(uow, partner_id)
    if partner.status != "active":
        raise PartnerNotActive()
    return partner


async def issue_link_code(
    uow: UnitOfWork, member_id: uuid.UUID, *, partner_code: str, grants: Sequence[Grant]
) -> IssuedLinkCode:
    """A code the member hands the partner, by which they consent to one link with these grants."""
    # Read once, behind the member's row lock: an erasure (or a close) under way finishes first and the member
    # is found as it left them, so no consent is written for a member it has just erased (their codes went).
    member = await MemberRepository(uow.session).get_member(member_id, lock=True)
    if member is None or member.status == ERASED:
        raise MemberNotFound()
    if member.status != MemberStatus.active:
        raise MemberNotActive()
    partner = await get_partner(uow, partner_code)
    if partner.status != "active":
        raise PartnerNotActive()
    code = generate_code()
    hashed = code_hash(code)
    assert hashed is not None
    now = uow.clock.now()
    granted: list[str] = sorted({"basic", *grants})
    await PartnerRepository(uow.session).insert_code(
        PartnerLinkCode(
            code_hash=hashed,
            member_id=member_id,
            partner_id=partner.id,
            grants=granted,
            expires_at=now + LINK_CODE_LIFETIME,
            used_at=None,
            created_at=now,
        )
    )
    return IssuedLinkCode(
        code=code, partner=partner.code, grants=granted, expires_at=now + LINK_CODE_LIFETIME
    )


@contextmanager
def _duplicate_link() -> Iterator[None]:
    try:
        yield
    except DuplicateKey as exc:
        if exc.constraint and exc.constraint.startswith("uq_partner_links__"):
            raise AlreadyLinked() from exc
        raise


async def link(uow: UnitOfWork, partner_id: uuid.UUID, *, code: str, partner_customer_ref: str) -> LinkView:
    """Link the partner's customer to the member whose code this is, once, with what they granted."""
    partner = await active_partner(uow, partner_id)
    hashed = code_hash(code)
    repo = PartnerRepository(uow.session)
    now = uow.clock.now()
    taken = None if hashed is None else await repo.take_code(hashed, partner.id, now)
    if taken is None:
        made = (
            None if hashed is None else await _link_made_with(repo, hashed, partner.id, partner_customer_ref)
        )
        if made is None:
            raise LinkCodeInvalid()
        return _view(made, partner)
    if await repo.get_member_link(partner.id, taken.member_id) is not None:
        raise AlreadyLinked()
    if await repo.get_link(partner.id, partner_customer_ref) is not None:
        raise AlreadyLinked()
    member = await require_member(uow, taken.member_id, must_be_active=False)
    if member.status != MemberStatus.active:
        raise LinkCodeInvalid()  # closed or suspended since: the consent no longer stands
    row = PartnerLink(
        partner_id=partner.id,
        member_id=taken.member_id,
        partner_customer_ref=partner_customer_ref,
        grants=list(taken.grants),
        created_at=now,
    )
    with _duplicate_link():
        await repo.insert_link(row)
    await emit_for_member(
        uow,
        PartnerLinked(
            member_id=row.member_id,
            partner=partner.code,
            partner_customer_ref=partner_customer_ref,
            grants=row.grants,
        ),
        row.member_id,
        partner.id,
    )
    return _view(row, partner)


async def _link_made_with(
    repo: PartnerRepository, hashed: str, partner_id: uuid.UUID, ref: str
) -> PartnerLink | None:
    """The link under `ref` to the member whose code this partner used: a link sent again without a key, its
    answer lost, is answered as made, where "ask the member for a new code" would send the customer back for
    a code that then answers already_linked. Another partner's, or another reference's, stays invalid."""
    used = await repo.get_used_code(hashed, partner_id)
    if used is None:
        return None
    made = await repo.get_link(partner_id, ref)
    return made if made is not None and made.member_id == used.member_id else None


def _view(row: PartnerLink, partner: Partner) -> LinkView:
    return LinkView(
        partner=partner.code,
        partner_name=partner.name,
        partner_customer_ref=row.partner_customer_ref,
        grants=list(row.grants),
        linked_at=row.created_at,
    )


async def partner_link(uow: UnitOfWork, partner_id: uuid.UUID, ref: str) -> tuple[Partner, PartnerLink]:
    partner = await active_partner(uow, partner_id)
    found = await PartnerRepository(uow.session).get_link(partner.id, ref)
    if found is None:
        raise LinkNotFound()
    return partner, found


async def locked_partner_link(
    uow: UnitOfWork, partner_id: uuid.UUID, ref: str
) -> tuple[Partner, PartnerLink]:
    """As `partner_link`, behind the lock on the member's row that every change to a member takes: an erasure
    under way finishes first, and then the link is gone (LinkNotFound), so nothing written here names the
    member by the partner's ref after the erasure forgot it."""
    _, row = await partner_link(uow, partner_id, ref)
    await MemberRepository(uow.session).get_member(row.member_id, lock=True)
    return await partner_link(uow, partner_id, ref)


async def is_linked(uow: UnitOfWork, partner_id: uuid.UUID, member_id: uuid.UUID) -> bool:
    """Whether the member is linked to the partner now, under whatever reference."""
    return await PartnerRepository(uow.session).get_member_link(partner_id, member_id) is not None


async def _unlink(uow: UnitOfWork, partner: Partner, row: PartnerLink, *, by: str) -> None:
    if not await PartnerRepository(uow.session).delete_link(row.id):
        raise LinkNotFound()  # unlinked, or its member erased, since it was read
    await emit_for_member(
        uow,
        PartnerUnlinked(
            member_id=row.member_id,
            partner=partner.code,
            partner_customer_ref=row.partner_customer_ref,
            by=by,
        ),
        row.member_id,
        partner.id,
    )


async def unlink_by_partner(uow: UnitOfWork, partner_id: uuid.UUID, ref: str) -> None:
    partner, row = await locked_partner_link(uow, partner_id, ref)
    await _unlink(uow, partner, row, by="partner")


async def unlink_by_member(uow: UnitOfWork, member_id: uuid.UUID, partner_code: str) -> None:
    await MemberRepository(uow.session).get_member(member_id, lock=True)  # as `locked_partner_link`
    await require_member(uow, member_id, must_be_active=False)
    partner = await get_partner(uow, partner_code)
    row = await PartnerRepository(uow.session).get_member_link(partner.id, member_id)
    if row is None:
        raise LinkNotFound()
    await _unlink(uow, partner, row, by="member")


async def member_links(uow: UnitOfWork, member_id: uuid.UUID) -> list[LinkView]:
    await require_member(uow, member_id, must_be_active=False)
    return (await members_links(uow, [member_id])).get(member_id, [])


async def members_links(uow: UnitOfWork, member_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[LinkView]]:
    """The links of each of these members that has any, in one statement (for the members' profiles)."""
    found: dict[uuid.UUID, list[LinkView]] = {}
    for row, partner in await PartnerRepository(uow.session).list_members_links(member_ids):
        found.setdefault(row.member_id, []).append(_view(row, partner))
    return found


async def member_perks(
    uow: UnitOfWork, member_id: uuid.UUID, *, limit: int, cursor: str | None
) -> Page[PerkView]:
    """The member's partner perks, newest first (for our till or shop: the customer's codes)."""
    await require_member(uow, member_id, must_be_active=False)
    scope = scope_of("partner_perks", member_id)
    rows = await PerkRepository(uow.session).list_member_perks(
        member_id, before_id=decode_cursor(cursor, scope), limit=limit + 1
    )
    page = page_of(rows, limit, lambda row: row[0].id, scope)
    return page.with_items(
        [perk_view(perk, code, None, vault=uow.vault, pooled=pooled) for perk, code, pooled in page.items]
    )


async def redeem_perk(uow: UnitOfWork, partner_id: uuid.UUID, typed_code: str) -> PerkView:
    """The partner honours a perk the customer showed it, once: a code of ours (any case, hyphens or not), or
    one from its pool (exactly as it uploaded it)."""
    partner = await active_partner(uow, partner_id)
    repo = PerkRepository(uow.session)
    perk_id = await repo.find_perk(
        partner.id, normalize_code(typed_code), pool_code_hash(uow.vault, typed_code)
    )
    given = None if perk_id is None else await repo.get(perk_id)
    if perk_id is None or given is None:
        raise PerkNotFound()
    # Behind the member's row, as `locked_partner_link`: an erasure under way finishes first, and then the
    # link is gone, so the answer (kept for an Idempotency-Key) names no ref the erasure forgot, and the perk
    # has ended with the member. An erased member is not there, nor is what was theirs (as a coupon's code is
    # `coupon_not_found`): a perk of theirs, redeemed before or ended by the erasure, is PerkNotFound.
    member = await MemberRepository(uow.session).get_member(given.member_id, lock=True)
    if member is None or member.status == ERASED:
        raise PerkNotFound()
    perk = await repo.redeem(perk_id, uow.clock.now())
    if perk is None:
        known = await repo.get(perk_id)
        if known is None or known.status != "redeemed":
            raise PerkNotFound()  # ended
        raise PerkAlreadyRedeemed(
            redeemed_at=None
            if known is None or known.redeemed_at is None
            else format_instant(known.redeemed_at)
        )
    # A suspended or closed member holds no benefits, as a coupon's use is refused: the redemption above is
    # rolled back with the rest. A perk redeemed already says so first, as a used coupon does.
    if member.status != MemberStatus.active:
        raise MemberNotActive()
    uow.member_concerned = perk.member_id
    link = await PartnerRepository(uow.session).get_member_link(partner.id, perk.member_id)
    return perk_view(
        perk,
        partner.code,
        None if link is None else link.partner_customer_ref,
        vault=uow.vault,
        pooled=await repo.pool_code_of(perk.id),
    )


async def purge_link_codes(units: UnitsOfWork) -> int:
    """Purge the link codes issued more than a day ago (each ended ten minutes after it was issued)."""

    async def batch(uow: UnitOfWork, limit: int) -> int:
        before = uow.clock.now() - LINK_CODE_LIFETIME - LINK_CODE_KEPT
        return await PartnerRepository(uow.session).purge_codes(first_id_at(before), limit=limit)

    return await purge_in_batches(units, batch)
