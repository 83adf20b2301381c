"""Members' profiles: enrol, read, look up, update, list, close and erase a member."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Final, Literal

from loyalty_api.auth.errors import ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.db.constraints import DuplicateKey
from loyalty_api.db.pagination import Page, decode_cursor, page_of, scope_of
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import FieldChecks, InvalidField
from loyalty_api.members import member_number as card
from loyalty_api.members.birthday_keys import birthday_keys, month_key
from loyalty_api.members.contact import check_system_name, normalise_email, normalise_phone
from loyalty_api.members.errors import MemberNotFound
from loyalty_api.members.events import MemberEnrolled, MemberUpdated
from loyalty_api.members.lifecycle import Stage, assess, thresholds_of
from loyalty_api.members.models import ERASED, Member, MemberStatus, Segment
from loyalty_api.members.repository import MemberRepository
from loyalty_api.members.service import require_member
from loyalty_api.outbox.events import TierPayload
from loyalty_api.outbox.service import emit_for_member
from loyalty_api.partners.perks import grant_owed_perks, void_owed_perks
from loyalty_api.points.accounts import release_member_holds
from loyalty_api.points.repository import PointsAccountRepository
from loyalty_api.profiles import qr_codes
from loyalty_api.profiles.errors import (
    InvalidMemberNumber,
    LookupNeedsOneIdentifier,
    MemberExists,
    ReferrerNotActive,
    UnknownReferralCode,
)
from loyalty_api.profiles.qr_codes import QrCode
from loyalty_api.profiles.repository import MemberRecord, ProfileRepository, TierRow
from loyalty_api.program.service import get_program
from loyalty_api.subscriptions.service import end_member_subscriptions
from loyalty_api.tiers.ladder import TierRef
from loyalty_api.tiers.repository import TierRepository

MEMBERS = scope_of("members")  # the member list's cursors carry it (whatever its filters)

EARLIEST_BIRTHDAY: Final = date(1900, 1, 1)
_REFERRAL_ALPHABET: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a till


class _Unset(Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET


@dataclass(frozen=True, slots=True)
class Lifecycle:
    stage: Stage
    since: datetime | None  # None: not assessed yet (a member from before lifecycles, until the job runs)


@dataclass(frozen=True, slots=True)
class MemberProfile:
    id: uuid.UUID
    member_number: str
    status: MemberStatus
    tier: TierRef | None
    points: int
    phone: str | None
    email: str | None
    name: str | None
    birthday: date | None
    channel: str
    marketing_consent: bool
    leaderboard_opt_in: bool
    referral_code: str
    referred_by: uuid.UUID | None
    external_ids: dict[str, str]
    lifecycle: Lifecycle
    created_at: datetime
    updated_at: datetime


def _tier_ref(tier: TierRow | None) -> TierRef | None:
    return None if tier is None else TierRef(code=tier.code, name=tier.name, rank=tier.rank)


def _decrypt(uow: UnitOfWork, token: str | None) -> str | None:
    return None if token is None else uow.vault.decrypt(token)


def _encrypt(uow: UnitOfWork, value: str | None) -> str | None:
    return None if value is None else uow.vault.encrypt(value)


def _points(record: MemberRecord) -> int:
    """The member's balance as a spend would find it, whether or not the jobs have run."""
    return 0 if record.points is None else record.points.as_a_spend_finds()[0]


def _profile(uow: UnitOfWork, record: MemberRecord) -> MemberProfile:
    m = record.member
    birthday = _decrypt(uow, m.birthday_encrypted)
    return MemberProfile(
        id=m.id,
        member_number=m.member_number,
        status=MemberStatus(m.status),
        tier=_tier_ref(record.tier),
        points=_points(record),
        phone=_decrypt(uow, m.phone_encrypted),
        email=_decrypt(uow, m.email_encrypted),
        name=_decrypt(uow, m.name_encrypted),
        birthday=None if birthday is None else date.fromisoformat(birthday),
        channel=m.channel,
        marketing_consent=m.marketing_consent,
        leaderboard_opt_in=m.leaderboard_opt_in,
        referral_code=m.referral_code,
        referred_by=m.referred_by_id,
        external_ids=dict(sorted(record.external_ids.items())),
        lifecycle=Lifecycle(Stage(m.lifecycle_stage), m.lifecycle_since),
        created_at=m.created_at,
        updated_at=m.updated_at,
    )


async def _check_birthday(uow: UnitOfWork, birthday: date | None) -> None:
    if birthday is None:
        return
    # Today as the programme's days turn (where birthdays are celebrated), not as UTC's.
    if birthday > uow.clock.now().astimezone((await get_program(uow)).zone).date():
        raise InvalidField("birthday", "must not be in the future")
    if birthday < EARLIEST_BIRTHDAY:
        raise InvalidField("birthday", "must be on or after 1900-01-01")


async def _check_contact_free(
    repo: MemberRepository,
    kind: Literal["phone", "email"],
    value_hash: str | None,
    *,
    other_than: uuid.UUID | None = None,
) -> None:
    if value_hash is not None and await repo.exists_contact_hash(kind, value_hash, other_than=other_than):
        raise MemberExists(kind)


async def _check_external_ids_free(
    repo: MemberRepository, external_ids: dict[str, str], *, other_than: uuid.UUID | None = None
) -> None:
    for system, external_id in external_ids.items():
        if await repo.exists_external_id(system, external_id, other_than=other_than):
            raise MemberExists(f"external id in {system}")


_CONSTRAINT_FIELDS = {
    "uq_members__member_number": "member number",
    "uq_members__phone_hash": "phone",
    "uq_members__email_hash": "email",
    "uq_member_external_ids__system_external_id": "external id",
}


@contextmanager
def _duplicates_as_member_exists() -> Iterator[None]:
    """The same phone, e-mail or external id enrolled by a concurrent request: the unique constraint
    decides, and the loser gets the same 409 as if the check before had seen it."""
    try:
        yield
    except DuplicateKey as exc:
        field = _CONSTRAINT_FIELDS.get(exc.constraint or "")
        if field is None:
            raise
        raise MemberExists(field) from exc


async def _new_member_number(repo: MemberRepository) -> str:
    while True:
        number = card.generate()
        if not await repo.exists_member_number(number):
            return number


async def _new_referral_code(repo: MemberRepository) -> str:
    while True:
        code = "".join(secrets.choice(_REFERRAL_ALPHABET) for _ in range(8))
        if not await repo.exists_referral_code(code):
            return code


async def enrol(
    uow: UnitOfWork,
    *,
    phone: str | None,
    email: str | None,
    name: str | None,
    birthday: date | None,
    channel: str,
    external_ids: dict[str, str],
    marketing_consent: bool,
    referral_code: str | None,
    member_number: str | None = None,
    imported: bool = False,
) -> MemberProfile:
    """A new member. An import's (`imported`) may bring the card the member carries from the programme's
    previous system (`member_number`, a valid card number)."""
    repo = MemberRepository(uow.session)
    checks = FieldChecks()
    with checks.check():
        phone = None if phone is None else normalise_phone(phone, uow.settings.default_phone_region)
    with checks.check():
        email = None if email is None else normalise_email(email)
    with checks.check():
        await _check_birthday(uow, birthday)
    checks.done()
    day_key, month_key = birthday_keys(uow.vault, birthday)
    phone_hash = None if phone is None else uow.vault.blind_index("phone", phone)
    email_hash = None if email is None else uow.vault.blind_index("email", email)
    # Every refusal that writes nothing comes before the check that the contact is free: else a refused
    # enrolment (a made-up referral code) would tell whether a phone number is a member's, at the key's
    # full rate and past the budgets that keep lookups by phone slow.
    referred_by = None
    if referral_code is not None:
        referrer = await repo.get_referrer(referral_code.strip().upper())
        if referrer is None:
            raise UnknownReferralCode()
        referred_by, status = referrer
        if status != MemberStatus.active:
            raise ReferrerNotActive()
    await _check_contact_free(repo, "phone", phone_hash)
    await _check_contact_free(repo, "email", email_hash)
    await _check_external_ids_free(repo, external_ids)
    if member_number is not None and await repo.exists_member_number(member_number):
        raise MemberExists("member number")

    now = uow.clock.now()
    tier = await TierRepository(uow.session).get_entry_tier()
    thresholds = thresholds_of(await get_program(uow))
    stage = assess(enrolled_at=now, last_purchase_at=None, now=now, thresholds=thresholds)
    member = Member(
        member_number=member_number or await _new_member_number(repo),
        status=MemberStatus.active,
        tier_id=None if tier is None else tier.id,
        tier_since=None if tier is None else now,
        phone_encrypted=_encrypt(uow, phone),
        phone_hash=phone_hash,
        email_encrypted=_encrypt(uow, email),
        email_hash=email_hash,
        name_encrypted=_encrypt(uow, name),
        birthday_encrypted=None if birthday is None else uow.vault.encrypt(birthday.isoformat()),
        birthday_day_key=day_key,
        birthday_month_key=month_key,
        channel=channel,
        marketing_consent=marketing_consent,
        referral_code=await _new_referral_code(repo),
        referred_by_id=referred_by,
        lifecycle_stage=stage.stage,
        lifecycle_since=now,
        lifecycle_due_at=stage.due,
        lifecycle_assessed_at=now,
        created_at=now,
        updated_at=now,
    )
    with _duplicates_as_member_exists():
        await repo.insert_member(member)
        for system, external_id in external_ids.items():
            await repo.set_external_id(member.id, system, external_id)
    await PointsAccountRepository(uow.session).insert_account(member.id, now)
    await emit_for_member(
        uow,
        MemberEnrolled(
            member_id=member.id,
            member_number=member.member_number,
            channel=channel,
            tier=None if tier is None else TierPayload(code=tier.code, name=tier.name, rank=tier.rank),
            referred_by=referred_by,
            imported=imported,
        ),
        member.id,
    )
    return await get_member(uow, member.id)


async def get_member(uow: UnitOfWork, member_id: uuid.UUID) -> MemberProfile:
    record = await ProfileRepository(uow.session, uow.clock.now()).get_record(member_id)
    if record is None:
        raise MemberNotFound()
    return _profile(uow, record)


async def get_by_number(uow: UnitOfWork, member_number: str) -> MemberProfile:
    member_number = card.as_typed(member_number)
    if not card.is_valid(member_number):
        raise InvalidMemberNumber()
    record = await ProfileRepository(uow.session, uow.clock.now()).get_record_by_number(member_number)
    if record is None:
        raise MemberNotFound()
    return _profile(uow, record)


async def get_members(uow: UnitOfWork, member_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, MemberProfile]:
    """The members of `member_ids` that exist, by id, read together (GraphQL batches its lookups)."""
    records = await ProfileRepository(uow.session, uow.clock.now()).get_records(member_ids)
    return {record.member.id: _profile(uow, record) for record in records}


async def get_members_by_number(uow: UnitOfWork, member_numbers: Sequence[str]) -> dict[str, MemberProfile]:
    """The members of `member_numbers` that exist, by number (a number that is not a card number finds
    none)."""
    valid = [number for number in member_numbers if card.is_valid(number)]
    records = (
        await ProfileRepository(uow.session, uow.clock.now()).get_records_by_number(valid) if valid else []
    )
    return {record.member.member_number: _profile(uow, record) for record in records}


async def lookup(
    uow: UnitOfWork,
    *,
    member_number: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    external_system: str | None = None,
    external_id: str | None = None,
    qr_code: str | None = None,
) -> MemberProfile:
    given = [v is not None for v in (member_number, phone, email, qr_code)]
    external = external_system is not None or external_id is not None
    if sum(given) + external != 1:
        raise LookupNeedsOneIdentifier()
    if member_number is not None:
        return await get_by_number(uow, member_number)
    repo = ProfileRepository(uow.session, uow.clock.now())
    if qr_code is not None:
        record = await repo.get_record(qr_codes.member_of(uow.vault, qr_code, uow.clock.now()))
    elif phone is not None:
        normal = normalise_phone(phone, uow.settings.default_phone_region)
        record = await repo.get_record_by_phone_hash(uow.vault.blind_index("phone", normal))
    elif email is not None:
        record = await repo.get_record_by_email_hash(uow.vault.blind_index("email", normalise_email(email)))
    else:
        if external_system is None or external_id is None:
            raise LookupNeedsOneIdentifier()
        # Trimmed as enrolment trims it before storing (profiles/schemas.ExternalId), so the value a till
        # enrolled a member with finds them; a blank one, which enrolment refuses, is refused here too rather
        # than missed at the cost of the key's misses budget.
        external_id = external_id.strip()
        if not external_id:
            raise InvalidField("external_id", "must not be blank")
        record = await repo.get_record_by_external_id(check_system_name(external_system), external_id)
    if record is None:
        raise MemberNotFound()
    return _profile(uow, record)


async def issue_qr_code(uow: UnitOfWork, member_id: uuid.UUID) -> QrCode:
    """A QR code for the member's app to show at the till, good for a few minutes (profiles/qr_codes.py);
    only for an active member, who can earn and spend with it."""
    await require_member(uow, member_id, must_be_active=True)
    return qr_codes.issue(uow.vault, member_id, uow.clock.now())


def changes_allowed(changes: Mapping[str, object], caller: Principal) -> bool:
    """Suspending, closing or reopening a member takes an admin key; any key that may update a member may
    change the rest."""
    return "status" not in changes or Scope.admin in caller.scopes


def check_changes_allowed(changes: Mapping[str, object], caller: Principal) -> None:
    """ScopeNotAllowed unless the caller may make these `changes_allowed`."""
    if not changes_allowed(changes, caller):
        raise ScopeNotAllowed(
            "Only an admin key may suspend, close or reopen a member", allowed_scopes=["admin"]
        )


async def contacts_changing(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    *,
    phone: str | None,
    email: str | None,
) -> int:
    """How many of the phone and e-mail an update would set (None: it sets none, or clears it) the member
    does not have already: each of those tells, by the update's answer, whether another member has it, where
    the member's own tells nothing the caller cannot read. None of them when there is no such member (the
    update finds no one). A value that is not a phone number or an e-mail address counts: the update refuses
    it only once it comes to it."""
    member = await MemberRepository(uow.session).get_member(member_id)
    if member is None or member.status == ERASED:
        return 0
    changing = 0
    for kind, given, held in (("phone", phone, member.phone_hash), ("email", email, member.email_hash)):
        if given is None:
            continue
        try:
            normal = (
                normalise_phone(given, uow.settings.default_phone_region)
                if kind == "phone"
                else normalise_email(given)
            )
        except InvalidField:
            changing += 1
            continue
        changing += uow.vault.blind_index(kind, normal) != held
    return changing


async def update(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    *,
    phone: str | _Unset | None = UNSET,
    email: str | _Unset | None = UNSET,
    name: str | _Unset | None = UNSET,
    birthday: date | _Unset | None = UNSET,
    status: MemberStatus | _Unset = UNSET,
    marketing_consent: bool | _Unset = UNSET,
    leaderboard_opt_in: bool | _Unset = UNSET,
    external_ids: dict[str, str | None] | _Unset = UNSET,
) -> MemberProfile:
    """Apply the given fields; a field given as None is cleared, a field not given is left alone.

    In `external_ids`, a system mapped to None is unlinked and the others are set (JSON merge patch).
    """
    repo = MemberRepository(uow.session)
    member = await repo.get_member(member_id, lock=True)
    if member is None or member.status == ERASED:
        raise MemberNotFound()
    # Every field's rule first, all named in one refusal, and before any contact is looked up as taken.
    checks = FieldChecks()
    with checks.check():
        normal_phone = (
            None if not isinstance(phone, str) else normalise_phone(phone, uow.settings.default_phone_region)
        )
    with checks.check():
        normal_email = None if not isinstance(email, str) else normalise_email(email)
    with checks.check():
        await _check_birthday(uow, None if isinstance(birthday, _Unset) else birthday)
    checks.done()
    # A field sent with the value it has is not a change: a till's PATCH sent again (a repeat sets the same
    # values) names no field and tells no one, and a field named in `member.updated` did change.
    changed: list[str] = []
    if not isinstance(phone, _Unset):
        phone_hash = None if normal_phone is None else uow.vault.blind_index("phone", normal_phone)
        if phone_hash != member.phone_hash:
            await _check_contact_free(repo, "phone", phone_hash, other_than=member_id)
            member.phone_encrypted, member.phone_hash = _encrypt(uow, normal_phone), phone_hash
            changed.append("phone")
    if not isinstance(email, _Unset):
        email_hash = None if normal_email is None else uow.vault.blind_index("email", normal_email)
        if email_hash != member.email_hash:
            await _check_contact_free(repo, "email", email_hash, other_than=member_id)
            member.email_encrypted, member.email_hash = _encrypt(uow, normal_email), email_hash
            changed.append("email")
    if not isinstance(name, _Unset) and name != _decrypt(uow, member.name_encrypted):
        member.name_encrypted = _encrypt(uow, name)
        changed.append("name")
    given_birthday = None if not isinstance(birthday, date) else birthday.isoformat()
    if not isinstance(birthday, _Unset) and given_birthday != _decrypt(uow, member.birthday_encrypted):
        member.birthday_encrypted = None if given_birthday is None else uow.vault.encrypt(given_birthday)
        member.birthday_day_key, member.birthday_month_key = birthday_keys(uow.vault, birthday)
        changed.append("birthday")
    returning = False
    if not isinstance(status, _Unset) and status != member.status:
        returning = status == MemberStatus.active
        if status == MemberStatus.closed:
            member.closed_at = uow.clock.now()
        else:
            member.closed_at = None
        member.status = status
        changed.append("status")
    if not isinstance(marketing_consent, _Unset) and marketing_consent != member.marketing_consent:
        member.marketing_consent = marketing_consent
        changed.append("marketing_consent")
    if not isinstance(leaderboard_opt_in, _Unset) and leaderboard_opt_in != member.leaderboard_opt_in:
        member.leaderboard_opt_in = leaderboard_opt_in
        changed.append("leaderboard_opt_in")
    if not isinstance(external_ids, _Unset):
        held = await repo.get_external_ids(member_id)
        moves = {system: value for system, value in external_ids.items() if held.get(system) != value}
        linked = {system: value for system, value in moves.items() if value is not None}
        await _check_external_ids_free(repo, linked, other_than=member_id)
        for system, value in moves.items():
            if value is None:
                await repo.delete_external_id(member_id, system)
            else:
                with _duplicates_as_member_exists():
                    await repo.set_external_id(member_id, system, value)
        if moves:
            changed.append("external_ids")
    if changed:
        member.updated_at = uow.clock.now()
        with _duplicates_as_member_exists():
            await repo.save_member()
        if "status" in changed and member.status == MemberStatus.closed:
            await end_member_subscriptions(uow, member_id)
            await void_owed_perks(uow, member_id)
            await release_member_holds(uow, member_id, reason="member_closed")
        await emit_for_member(
            uow,
            MemberUpdated(
                member_id=member.id, member_number=member.member_number, status=member.status, changed=changed
            ),
            member.id,
        )
        if returning:
            # Uploads of partner codes while they were suspended passed them over: they get their owed
            # perks now, from the codes those left unused.
            await grant_owed_perks(uow, member_id)
    return await get_member(uow, member_id)


@dataclass(frozen=True, slots=True)
class ErasedMember:
    member_id: uuid.UUID
    erased_at: datetime
    newly: bool  # False: it was erased already, and nothing was done
    external_ids: int  # how many were removed
    # What identified the member, for the erasure to find copies of elsewhere: their own (contacts, the old
    # card number), their ids in other systems (external ids: each system's own numbering, as short as "1001",
    # so another member's order or receipt may hold the same string), and what they may share with other
    # members (name, birthday).
    identifiers: list[str]
    external_refs: list[str]
    traits: list[str]


async def erase(uow: UnitOfWork, member_id: uuid.UUID) -> ErasedMember:
    """Remove the member's personal data for good (contacts, name, birthday, their blind indexes, external
    ids: free for another member to use), end their subscriptions and the partner perks still owed them, and
    free their holds at once, as closing does. The row stays, anonymous, so the ledger, tier history and the
    programme's figures keep their member. Again: nothing."""
    repo = MemberRepository(uow.session)
    member = await repo.get_member(member_id, lock=True)
    if member is None:
        raise MemberNotFound()
    if member.status == ERASED:
        return ErasedMember(
            member_id,
            member.updated_at,
            newly=False,
            external_ids=0,
            identifiers=[],
            external_refs=[],
            traits=[],
        )
    contacts = [_decrypt(uow, member.phone_encrypted), _decrypt(uow, member.email_encrypted)]
    identifiers = [*(value for value in contacts if value is not None), member.member_number]
    external_refs = await repo.external_ids_of(member_id)
    shared = [_decrypt(uow, member.name_encrypted), _decrypt(uow, member.birthday_encrypted)]
    traits = [value for value in shared if value is not None]
    await end_member_subscriptions(uow, member_id)
    await void_owed_perks(uow, member_id)
    await release_member_holds(uow, member_id, reason="member_erased")
    now = uow.clock.now()
    removed = await repo.erase(member_id, now, member_number=await _new_member_number(repo))
    return ErasedMember(
        member_id,
        now,
        newly=True,
        external_ids=removed,
        identifiers=identifiers,
        external_refs=external_refs,
        traits=traits,
    )


async def list_members(
    uow: UnitOfWork,
    *,
    tier: str | None,
    status: MemberStatus | None,
    lifecycle: Stage | None = None,
    segment: Segment | None = None,
    birthday_month: int | None = None,
    limit: int,
    cursor: str | None,
) -> Page[MemberProfile]:
    after_id = decode_cursor(cursor, MEMBERS)
    tier_id = None
    if tier is not None:
        found = await TierRepository(uow.session).get_by_code(tier)
        if found is None:
            # Refused, as a campaign for that tier is: an empty page would say nobody is on it, where the code
            # is a typo, or a tier renamed or not made yet.
            raise InvalidField("tier", "no tier has this code: GET /v1/tiers lists the ladder's codes")
        tier_id = found.id
    records = await ProfileRepository(uow.session, uow.clock.now()).list_records(
        tier_id=tier_id,
        status=status,
        lifecycle=lifecycle,
        segment=segment,
        birthday_month_key=None if birthday_month is None else month_key(uow.vault, birthday_month),
        after_id=after_id,
        limit=limit + 1,
    )
    page = page_of(records, limit, lambda record: record.member.id, MEMBERS)
    return page.with_items([_profile(uow, r) for r in page.items])
