"""/v1/members: enrol, read, look up, update, list."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.convertors import StringConvertor, register_url_convertor

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import EmptyIsLeftOut, InDigits, Limiter, Paging, UoW, require
from loyalty_api.http.edge import lookup_budgets, principal_of
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.rate_limits import RateLimited
from loyalty_api.http.transaction import QueryRoute, UnitOfWorkRoute
from loyalty_api.members.errors import MemberNotActive, MemberNotFound
from loyalty_api.members.lifecycle import Stage
from loyalty_api.members.models import MemberStatus, Segment
from loyalty_api.partners import service as partners
from loyalty_api.profiles import contact_budget, imports, service
from loyalty_api.profiles.contact_budget import contact_conflicts_counted
from loyalty_api.profiles.errors import (
    InvalidMemberNumber,
    LookupNeedsOneIdentifier,
    MemberExists,
    QrCodeExpired,
    QrCodeInvalid,
    ReferrerNotActive,
    UnknownReferralCode,
)
from loyalty_api.profiles.schemas import (
    ImportedMemberRead,
    MemberCreate,
    MemberImportRead,
    MemberImportRequest,
    MemberPage,
    MemberProfileRead,
    MemberRead,
    MemberUpdate,
    ProfileLinkRead,
    QrCodeRead,
)
from loyalty_api.tiers.schemas import TierCode


class _ContactsFirstRoute(UnitOfWorkRoute):
    """An enrolment's or an update's contact-lookup budget is checked or spent before its unit of work opens
    (see profiles.contact_budget), for a caller the route lets in, with a valid body, making a change it may
    make: a request refused anyway spends nothing. What that meets (a 429) waits in `request.state` for the
    endpoint (`ContactsFirst`)."""

    async def prepare(self, request: Request, body: Any) -> None:
        principal = principal_of(request)
        if body is None or principal is None or not principal.has_any(self.scopes):
            return
        limiter = request.app.state.rate_limiter
        try:
            if isinstance(body, MemberCreate):
                await contact_budget.check_before_enrolment(limiter, principal, body)
            elif isinstance(body, MemberUpdate):
                member_id = _member_id(request.path_params.get("member_id"))
                changes = body.changes()
                if member_id is None or not service.changes_allowed(changes, principal):
                    return  # the endpoint refuses it
                units = request.app.state.units
                await contact_budget.spend_before_update(units, limiter, principal, member_id, body)
        except Exception as exc:  # raised by the endpoint, in its unit of work (the route answers it there)
            request.state.contacts_refusal = exc


def _member_id(segment: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(segment))
    except ValueError:
        return None


async def _contacts_first(request: Request) -> None:  # async: FastAPI runs a plain def in a thread
    refusal: Exception | None = getattr(request.state, "contacts_refusal", None)
    if refusal is not None:
        raise refusal


router = APIRouter(prefix="/v1/members", tags=["members"], route_class=_ContactsFirstRoute)


class _MemberIdSegment(StringConvertor):
    """A path segment that may be a member's id: anything but `lookup` and `import`, so that `PATCH
    /v1/members/lookup` is a 405 of the lookup route rather than a 422 for a member id that is not a UUID."""

    regex = "(?!(?:lookup|import)$)[^/]+"


register_url_convertor("member_id", _MemberIdSegment())

MemberDesk = Annotated[Principal, Depends(require(Scope.admin, Scope.pos, Scope.ecommerce))]
Operator = Annotated[Principal, Depends(require(Scope.admin))]
_AUTH = (InvalidApiKey, ScopeNotAllowed)
# After the caller's dependency: a key refused for its scope is told so, not what the budget met.
ContactsFirst = Annotated[None, Depends(_contacts_first)]


@router.post(
    "",
    status_code=201,
    summary="Enrol a member",
    responses=problem_responses(
        *_AUTH, MemberExists, UnknownReferralCode, ReferrerNotActive, InvalidField, RateLimited
    ),
)
async def enrol_member(
    body: MemberCreate, uow: UoW, caller: MemberDesk, _: ContactsFirst, limiter: Limiter
) -> MemberRead:
    """Enrol a member: a new card number (`member_number`: ten digits, the last a Luhn check digit), the entry
    tier, no points. Every field may be left out; phone numbers are stored in E.164, e-mails lower-cased.

    For `pos`, `ecommerce` and `admin` keys; honours `Idempotency-Key`. A phone, e-mail or external id another
    member has is 409 `member_exists`; an unknown `referral_code` is 422 `unknown_referral_code`, one of a
    suspended or closed member 422 `referrer_not_active`. A `member_exists` on a phone or e-mail spends the
    key's contact-lookup budget, as a look-up by it would; once it is spent, enrolments naming either are 429
    `rate_limited`. Emits `member.enrolled`."""
    async with contact_conflicts_counted(limiter, caller, body):
        profile = await service.enrol(
            uow,
            phone=body.phone,
            email=body.email,
            name=body.name,
            birthday=body.birthday,
            channel=body.channel,
            external_ids=body.external_ids,
            marketing_consent=body.marketing_consent,
            referral_code=body.referral_code,
        )
    return MemberRead.model_validate(profile)


@router.post(
    "/import",
    status_code=201,
    summary="Import members from the programme's previous system",
    responses=problem_responses(*_AUTH, MemberExists, InvalidField),
)
async def import_members(body: MemberImportRequest, uow: UoW, caller: Operator) -> MemberImportRead:
    """Bring up to 200 members over from the programme's previous system in one call: each with what an
    enrolment takes, and the card number they carry (`member_number`, kept when it is ten digits with a Luhn
    check digit, as ours are, and not all zeros; other cards go in `external_ids`, where a till looks them up
    by `external_system` and `external_id`), the points they hold, each part with its end (`points`), and the
    tier they had (`tier`: held until `until` as if just qualified for, then reviewed by what they bought
    here; a purchase may move them up before). They start here as newcomers do otherwise: lifecycle `new`,
    no purchases, `member.enrolled` with `imported: true`. Send the members in batches; imports run one at a
    time.

    For `admin` keys only; honours `Idempotency-Key`. A batch is written whole or not at all: a phone,
    e-mail, external id or card number another member has (in the programme, or earlier in the batch) is 409
    `member_exists` naming the `row`; a value that breaks a rule is 422 `validation_error` naming
    `members.N.field` (an unknown tier `code`, a tier's `until` or a `points` end not in the future). Send the
    corrected batch with a new Idempotency-Key: a key gives back the refusal it was first given. Imported
    points count neither as earned (`lifetime_earned`, tiers) nor as adjusted: the ledger shows an `import`
    entry, the analytics `imported`. Emits `member.enrolled` for each member, `points.imported` for each that
    brings points, and `tier.upgraded` (reason `imported`) for each placed above the entry tier."""
    imported = await imports.import_members(
        uow, [row.member_import() for row in body.members], actor=caller.key_id
    )
    return MemberImportRead(members=[ImportedMemberRead.model_validate(member) for member in imported])


@router.get(
    "/lookup",
    summary="Find a member by card number, phone, e-mail, QR code or an external id",
    description="Exactly one identifier: `member_number`, `phone`, `email`, `qr_code` (what the member's app "
    "shows, from `POST /v1/members/{member_id}/qr-code`: 422 `qr_code_expired` once its minutes are over, "
    "`qr_code_invalid` for a code this service did not make, 404 `member_not_found` when its member is "
    "gone), or `external_system` with `external_id`. A `phone` or `email` that is not one, an "
    "`external_system` enrolment would refuse (spaces, capitals) or a blank `external_id` is 422 "
    "`validation_error`, as at enrolment; the `external_id` is trimmed as enrolment trims it. Keys with the "
    "scopes `pos`, `ecommerce` or `admin` may call it. "
    "Lookups by phone or e-mail also spend the key's contact-lookup budget "
    "(`LOYALTY_RATE_LIMIT_CONTACT_LOOKUP`), and lookups that find no one its misses budget "
    "(`LOYALTY_RATE_LIMIT_LOOKUP_MISSES`); both are small, to stop a walk through numbers.",
    responses=problem_responses(
        *_AUTH,
        MemberNotFound,
        InvalidMemberNumber,
        LookupNeedsOneIdentifier,
        QrCodeInvalid,
        QrCodeExpired,
        RateLimited,
    ),
)
async def lookup_member(
    uow: UoW,
    _: MemberDesk,
    counting_misses: Annotated[AbstractAsyncContextManager[None], Depends(lookup_budgets)],
    member_number: Annotated[str | None, Query(max_length=32), EmptyIsLeftOut] = None,
    phone: Annotated[str | None, Query(max_length=32), EmptyIsLeftOut] = None,
    email: Annotated[str | None, Query(max_length=254), EmptyIsLeftOut] = None,
    external_system: Annotated[str | None, Query(max_length=32), EmptyIsLeftOut] = None,
    external_id: Annotated[str | None, Query(max_length=64), EmptyIsLeftOut] = None,
    qr_code: Annotated[
        str | None,
        Query(max_length=64, description="What the member's app shows: `LQ1` and 48 characters"),
        EmptyIsLeftOut,
    ] = None,
) -> MemberRead:
    async with counting_misses:
        profile = await service.lookup(
            uow,
            member_number=member_number,
            phone=phone,
            email=email,
            external_system=external_system,
            external_id=external_id,
            qr_code=qr_code,
        )
    return MemberRead.model_validate(profile)


@router.get(
    "",
    summary="List members, page by page",
    responses=problem_responses(*_AUTH),
)
async def list_members(
    uow: UoW,
    _: Operator,
    paging: Paging,
    tier: Annotated[TierCode | None, Query(description="Tier code"), EmptyIsLeftOut] = None,
    status: Annotated[MemberStatus | None, Query(), EmptyIsLeftOut] = None,
    lifecycle: Annotated[Stage | None, Query(description="Lifecycle stage"), EmptyIsLeftOut] = None,
    segment: Annotated[
        Segment | None, Query(description="RFM segment (`GET /v1/segments`)"), EmptyIsLeftOut
    ] = None,
    birthday_month: Annotated[
        int | None, Query(ge=1, le=12, description="Birthday month, 1–12"), InDigits, EmptyIsLeftOut
    ] = None,
) -> MemberPage:
    """Members page by page, oldest first, optionally only those on one `tier` (by code), with one `status`,
    in one `lifecycle` stage, in one RFM `segment` or born in one `birthday_month` (any of them together).
    A tier's code is taken as everywhere else: lower case, so `GOLD` is 422 `validation_error`, and so is a
    code no tier has (`platinum` on a ladder without it), as a campaign for it is refused: never the empty
    page of a tier nobody is on.

    For `admin` keys only. Reads only."""
    page = await service.list_members(
        uow,
        tier=tier,
        status=status,
        lifecycle=lifecycle,
        segment=segment,
        birthday_month=birthday_month,
        limit=paging.limit,
        cursor=paging.cursor,
    )
    return MemberPage(items=[MemberRead.model_validate(p) for p in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{member_id:member_id}",
    summary="Read a member",
    responses=problem_responses(*_AUTH, MemberNotFound),
)
async def read_member(member_id: uuid.UUID, uow: UoW, _: MemberDesk) -> MemberProfileRead:
    """A member by id: profile, card number, status, tier, points balance, and the partners they are linked
    to (`partner_links`; the partner's customer reference is in `GET /v1/members/{member_id}/partner-links`).
    To find one by card number, phone, e-mail or an external id, use `GET /v1/members/lookup`, which
    answers without the links: the till's lookup stays one query.

    For `pos`, `ecommerce` and `admin` keys. Reads only."""
    member = MemberRead.model_validate(await service.get_member(uow, member_id))
    links = (await partners.members_links(uow, [member_id])).get(member_id, [])
    return MemberProfileRead(**dict(member), partner_links=[ProfileLinkRead.model_validate(k) for k in links])


@router.patch(
    "/{member_id:member_id}",
    summary="Update a member (changing `status` takes an admin key)",
    responses=problem_responses(*_AUTH, MemberNotFound, MemberExists, InvalidField, RateLimited),
)
async def update_member(
    member_id: uuid.UUID, body: MemberUpdate, uow: UoW, caller: MemberDesk, _: ContactsFirst
) -> MemberRead:
    """Change the fields sent and leave the others: null clears a personal field (phone, e-mail, name,
    birthday), and `external_ids` is merged (a system set to null is unlinked). Changing `status` (suspend,
    close, reopen) takes an `admin` key; closing a member ends their subscriptions.

    For `pos`, `ecommerce` and `admin` keys. PATCH does not take `Idempotency-Key`: a repeat sets the same
    values. A phone, e-mail or external id another member has is 409 `member_exists`. Each phone or e-mail
    sent (not null) that the member does not have already spends the key's contact-lookup budget first, taken
    or not, as a look-up by it would (the member's own sent again spends nothing): once it is spent, updates
    naming a new one are 429 `rate_limited`. Emits `member.updated`, which names the changed fields, never
    their values."""
    changes = body.changes()
    service.check_changes_allowed(changes, caller)
    profile = await service.update(uow, member_id, **changes)
    return MemberRead.model_validate(profile)


async def issue_qr_code(member_id: uuid.UUID, uow: UoW, _: MemberDesk) -> QrCodeRead:
    """A code naming the member, for their app to show as a QR code; a till finds them with `GET
    /v1/members/lookup?qr_code=`. It works for five minutes (`expires_at`), so a screenshot of it soon
    stops working: ask for a new one each time the app shows it. Signed with a key derived from the
    encryption key, and stored nowhere. Only for an active member (409 `member_not_active`).

    For `pos`, `ecommerce` and `admin` keys. Writes nothing, so it ignores `Idempotency-Key`: asking again
    gives another code, as good."""
    issued = await service.issue_qr_code(uow, member_id)
    return QrCodeRead(qr_code=issued.code, expires_at=issued.expires_at)


# A POST that writes nothing (the code is signed, not stored): a read-only unit of work, as the quote's.
router.add_api_route(
    "/{member_id}/qr-code",
    issue_qr_code,
    methods=["POST"],
    status_code=201,
    summary="A QR code for the member's app to show at the till",
    responses=problem_responses(*_AUTH, MemberNotFound, MemberNotActive),
    route_class_override=QueryRoute,
)
