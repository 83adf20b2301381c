"""Partners: the registry (admin), a member's consent and links (our tills and shop), and what a partner's
own system reads and does for the members linked to it (`/v1/partner/...`, partner keys only)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.coalition import exchanges, purchases, settlement
from loyalty_api.coalition import service as coalition
from loyalty_api.coalition.schemas import (
    BenefitUseRead,
    BenefitUseRequest,
    CustomerRef,
    ExchangeInRequest,
    ExchangeOutRequest,
    ExchangePage,
    ExchangeRead,
    LinkCodeRead,
    LinkCodeRequest,
    LinkPage,
    LinkRead,
    LinkRequest,
    PartnerCode,
    PartnerCreate,
    PartnerEarnRead,
    PartnerEarnRequest,
    PartnerMemberRead,
    PartnerPage,
    PartnerPerkPage,
    PartnerPerkRead,
    PartnerRead,
    PartnerRefundRead,
    PartnerRefundRequest,
    PartnerTerms,
    PartnerWrite,
    PerkCodesUpload,
    PerkCodesUploadRead,
    PerkKey,
    PerkPoolRead,
    SettlementRead,
)
from loyalty_api.db.pagination import page_after, scope_of
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import Paging, UoW, require
from loyalty_api.http.negotiation import ReportAsCsv, csv_response
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.schemas import QueryInstant
from loyalty_api.http.transaction import UnitOfWorkRoute
from loyalty_api.members.errors import MemberNotActive, MemberNotFound
from loyalty_api.partners import perk_pools, service
from loyalty_api.partners.errors import (
    AlreadyLinked,
    BenefitUseRecorded,
    ExchangeAlreadyRecorded,
    ExchangeLimitExceeded,
    ExchangeNotFound,
    ExchangeNotOffered,
    ExchangeNotPending,
    LinkCodeInvalid,
    LinkNotFound,
    NotEntitled,
    PartnerEarnNotOffered,
    PartnerExists,
    PartnerNotActive,
    PartnerNotFound,
    PerkAlreadyRedeemed,
    PerkNotFound,
    PerkPoolNotFound,
)
from loyalty_api.points.errors import (
    CurrencyMismatch,
    InsufficientPoints,
    OrderAlreadyEarned,
    OrderBelongsToAnotherMember,
    OrderNotFound,
    PointsInReturnWindow,
    RefundExceedsOrder,
)

router = APIRouter(prefix="/v1", tags=["partners"], route_class=UnitOfWorkRoute)

Operator = Annotated[Principal, Depends(require(Scope.admin))]
MemberDesk = Annotated[Principal, Depends(require(Scope.admin, Scope.pos, Scope.ecommerce))]
PartnerKey = Annotated[Principal, Depends(require(Scope.partner))]
Ref = Annotated[CustomerRef, Path(description="Your id of the customer, as you linked them")]
_AUTH = (InvalidApiKey, ScopeNotAllowed)


def _terms(body: PartnerTerms) -> service.Terms:
    return service.Terms(**body.model_dump(include=set(PartnerTerms.model_fields)))


def _partner_of(caller: Principal) -> uuid.UUID:
    assert caller.partner_id is not None  # a partner key names its partner (keys create refuses otherwise)
    return caller.partner_id


@router.post(
    "/partners",
    status_code=201,
    summary="Register a partner brand",
    responses=problem_responses(*_AUTH, PartnerExists, InvalidField),
)
async def create_partner(body: PartnerCreate, uow: UoW, _: Operator) -> PartnerRead:
    """Register a brand that runs joint membership with the programme. Its system then calls with keys bound
    to it: `loyalty-api keys create --scope partner --partner <id>`.

    For `admin` keys only; honours `Idempotency-Key`. A code taken already is 409 `partner_exists`."""
    partner = await service.create_partner(uow, code=body.code, name=body.name, terms=_terms(body))
    return PartnerRead.model_validate(partner)


@router.get("/partners", summary="List the partners", responses=problem_responses(*_AUTH, InvalidField))
async def list_partners(uow: UoW, _: Operator, paging: Paging) -> PartnerPage:
    """The partners, oldest first, page by page.

    For `admin` keys only. Reads only."""
    page = await service.list_partners(uow, limit=paging.limit, cursor=paging.cursor)
    return PartnerPage(
        items=[PartnerRead.model_validate(p) for p in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/partners/{code}", summary="Read a partner", responses=problem_responses(*_AUTH, PartnerNotFound)
)
async def read_partner(code: PartnerCode, uow: UoW, _: Operator) -> PartnerRead:
    """One partner, by code.

    For `admin` keys only. Reads only."""
    return PartnerRead.model_validate(await service.read_partner(uow, code))


@router.put(
    "/partners/{code}",
    summary="Change a partner's name, status or terms",
    responses=problem_responses(*_AUTH, PartnerNotFound, InvalidField),
)
async def replace_partner(code: PartnerCode, body: PartnerWrite, uow: UoW, _: Operator) -> PartnerRead:
    """Change a partner's name, status or terms (the whole of them: what is left out is not offered). A
    suspended partner's keys reach no member (their calls are refused as `partner_not_active`) and it cannot
    be linked to; its links stay, and work again once it is active. Exchanges already pending keep their rate
    and time limit, and the partner may still read, confirm or fail them while suspended: their time runs on.

    For `admin` keys only. PUT does not take `Idempotency-Key`: it replaces, so a repeat sets the same values.
    Emits `partner.changed`, unless the partner is as sent already (a repeat changes nothing)."""
    return PartnerRead.model_validate(
        await service.update_partner(uow, code, name=body.name, status=body.status, terms=_terms(body))
    )


@router.post(
    "/members/{member_id}/partner-link-codes",
    status_code=201,
    summary="A code by which the member consents to a link with a partner",
    responses=problem_responses(*_AUTH, MemberNotFound, MemberNotActive, PartnerNotFound, PartnerNotActive),
)
async def create_link_code(
    member_id: uuid.UUID, body: LinkCodeRequest, uow: UoW, _: MemberDesk
) -> LinkCodeRead:
    """Ask the member, at the till or in the shop, whether the partner may see their tier and paid membership
    (`basic`) and, if they choose, their points (`points`); if they agree, show them this code, which they
    give the partner within ten minutes. One code links once, to that partner only.

    For `pos`, `ecommerce` and `admin` keys; honours `Idempotency-Key`."""
    issued = await service.issue_link_code(uow, member_id, partner_code=body.partner, grants=body.grants)
    return LinkCodeRead.model_validate(issued)


@router.get(
    "/members/{member_id}/partner-links",
    summary="The partners a member is linked to",
    responses=problem_responses(*_AUTH, MemberNotFound, InvalidField),
)
async def list_member_links(member_id: uuid.UUID, uow: UoW, _: MemberDesk, paging: Paging) -> LinkPage:
    """The member's links, with what each partner may see, page by page.

    For `pos`, `ecommerce` and `admin` keys. Reads only."""
    links = await service.member_links(uow, member_id)
    page = page_after(
        links,
        limit=paging.limit,
        cursor=paging.cursor,
        key=lambda k: (k.partner,),
        shape=(str,),
        scope=scope_of("partner_links", member_id),
    )
    return LinkPage(items=[LinkRead.model_validate(k) for k in page.items], next_cursor=page.next_cursor)


@router.delete(
    "/members/{member_id}/partner-links/{partner}",
    status_code=204,
    summary="Unlink a member from a partner (on the member's word)",
    responses=problem_responses(*_AUTH, MemberNotFound, PartnerNotFound, LinkNotFound),
)
async def unlink_member(member_id: uuid.UUID, partner: PartnerCode, uow: UoW, _: MemberDesk) -> Response:
    """End the link at once: from now on the partner reads nothing of the member. Emits `partner.unlinked`.

    For `pos`, `ecommerce` and `admin` keys."""
    await service.unlink_by_member(uow, member_id, partner)
    return Response(status_code=204)


@router.post(
    "/partner/links",
    status_code=201,
    summary="Link your customer to a member, with the code the member gave you",
    responses=problem_responses(*_AUTH, LinkCodeInvalid, AlreadyLinked, PartnerNotActive),
)
async def link(body: LinkRequest, uow: UoW, caller: PartnerKey) -> PartnerMemberRead:
    """Redeem the member's link code for your customer `partner_customer_ref`, and get the member's joint
    view. An unknown, expired, used code, or one given for another partner, is 404 `link_code_invalid`
    (the same answer for each); the same code sent again for the same customer (an answer lost) is answered
    with the link it made. Emits `partner.linked`, once.

    For `partner` keys only; honours `Idempotency-Key`."""
    partner_id = _partner_of(caller)
    linked = await service.link(
        uow, partner_id, code=body.code, partner_customer_ref=body.partner_customer_ref
    )
    return PartnerMemberRead.model_validate(
        await coalition.partner_view(uow, partner_id, linked.partner_customer_ref)
    )


@router.delete(
    "/partner/links/{ref}",
    status_code=204,
    summary="Unlink your customer",
    responses=problem_responses(*_AUTH, LinkNotFound, PartnerNotActive),
)
async def unlink(ref: Ref, uow: UoW, caller: PartnerKey) -> Response:
    """End the link at once. Emits `partner.unlinked`.

    For `partner` keys only."""
    await service.unlink_by_partner(uow, _partner_of(caller), ref)
    return Response(status_code=204)


@router.get(
    "/partner/members/{ref}",
    summary="The joint view of a member linked to you",
    responses=problem_responses(*_AUTH, LinkNotFound, PartnerNotActive),
)
async def read_partner_member(ref: Ref, uow: UoW, caller: PartnerKey) -> PartnerMemberRead:
    """Tier, paid-membership status and, if the member granted it, points, of the member you linked as
    `ref`; never personal data. Anything else is 404 `link_not_found`, whoever the reference might be.

    For `partner` keys only. Reads only."""
    return PartnerMemberRead.model_validate(await coalition.partner_view(uow, _partner_of(caller), ref))


@router.post(
    "/partner/members/{ref}/earn",
    status_code=201,
    summary="Earn for a purchase your customer made with you",
    responses=problem_responses(
        *_AUTH,
        LinkNotFound,
        PartnerNotActive,
        PartnerEarnNotOffered,
        MemberNotActive,
        OrderAlreadyEarned,
        OrderBelongsToAnotherMember,
        CurrencyMismatch,
    ),
)
async def earn_at_partner(
    ref: Ref, body: PartnerEarnRequest, uow: UoW, caller: PartnerKey
) -> PartnerEarnRead:
    """The member you linked as `ref` earns in our programme for a purchase at your business, at your earn
    rate, as points of ours that expire as the programme says. An order earns once: the same `order_ref`
    again is 409 `order_already_earned`, even without `Idempotency-Key`, and also after the customer
    unlinked, the member was suspended, closed or erased, or you were suspended or your earn rate withdrawn
    or raised meanwhile (not `link_not_found`, `member_not_active`, `partner_not_active`,
    `partner_earn_not_offered` or `validation_error`). Purchases with you do not count
    toward our tiers. Emits `points.earned` (to the programme's endpoints, not yours).

    For `partner` keys only; honours `Idempotency-Key`."""
    earned = await purchases.earn_at_partner(
        uow,
        _partner_of(caller),
        ref,
        order_ref=body.order_ref,
        amount=body.amount.money(),
        actor=caller.key_id,
    )
    return PartnerEarnRead.model_validate(earned)


@router.post(
    "/partner/members/{ref}/refunds",
    summary="Refund a purchase your customer earned for",
    responses=problem_responses(
        *_AUTH, LinkNotFound, PartnerNotActive, OrderNotFound, RefundExceedsOrder, CurrencyMismatch
    ),
)
async def refund_at_partner(
    ref: Ref, body: PartnerRefundRequest, uow: UoW, caller: PartnerKey
) -> PartnerRefundRead:
    """Refund part (`amount`) or the rest (`full`) of an order the member earned for with you: the points it
    earned are taken back in proportion (`points_reversed`). If the member granted you `points`, the answer
    also splits them: taken from the balance (`points_taken_back`), spent already (`shortfall`), expired
    already (`already_expired`); otherwise those are null, as `points` is. An order of another customer's, or
    unknown, is 404 `order_not_found`. A customer who unlinked since is still refunded, by the reference the
    purchase was made under, and the answer shows none of their points (404 `link_not_found` once they are
    linked again under another reference: refund with that one). Emits `points.refunded`.

    For `partner` keys only; honours `Idempotency-Key`."""
    done = await purchases.refund_at_partner(
        uow,
        _partner_of(caller),
        ref,
        body.order_ref,
        amount=None if body.amount is None else body.amount.money(),
        full=body.full is True,
        actor=caller.key_id,
    )
    return PartnerRefundRead.model_validate(done)


@router.post(
    "/members/{member_id}/exchanges",
    status_code=201,
    summary="Send a member's points to their account at a partner",
    responses=problem_responses(
        *_AUTH,
        MemberNotFound,
        MemberNotActive,
        PartnerNotFound,
        PartnerNotActive,
        LinkNotFound,
        ExchangeNotOffered,
        ExchangeLimitExceeded,
        PointsInReturnWindow,
        InsufficientPoints,
        InvalidField,
    ),
)
async def exchange_out(
    member_id: uuid.UUID, body: ExchangeOutRequest, uow: UoW, caller: MemberDesk
) -> ExchangeRead:
    """Spend `points` of the member's now, converted at the partner's rate (rounded down) for the account the
    member linked there. The exchange is `pending` until the partner confirms it; if it fails it, or does not
    answer within its time limit, the member gets the points back. The member must be linked to the partner
    (404 `link_not_found`); the partner's daily limits apply (422 `exchange_limit_exceeded`); points that
    purchases within the programme's `return_window_days` earned wait until the window has passed (422
    `points_in_return_window`). Emits `partner.exchange_requested`, to the partner's endpoints too.

    For `pos`, `ecommerce` and `admin` keys; honours `Idempotency-Key`."""
    done = await exchanges.exchange_out(
        uow, member_id, partner_code=body.partner, points=body.points, actor=caller.key_id
    )
    return ExchangeRead.model_validate(done)


@router.get(
    "/members/{member_id}/exchanges",
    summary="A member's exchanges with partners",
    responses=problem_responses(*_AUTH, MemberNotFound, InvalidField),
)
async def list_member_exchanges(
    member_id: uuid.UUID, uow: UoW, _: MemberDesk, paging: Paging
) -> ExchangePage:
    """The member's exchanges both ways, newest first, page by page.

    For `pos`, `ecommerce` and `admin` keys. Reads only."""
    page = await exchanges.member_exchanges(uow, member_id, limit=paging.limit, cursor=paging.cursor)
    return ExchangePage(
        items=[ExchangeRead.model_validate(e) for e in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/partner/members/{ref}/exchanges-in",
    status_code=201,
    summary="Send your customer's points to their membership with us",
    responses=problem_responses(
        *_AUTH,
        LinkNotFound,
        PartnerNotActive,
        MemberNotActive,
        ExchangeNotOffered,
        ExchangeLimitExceeded,
        ExchangeAlreadyRecorded,
        InvalidField,
    ),
)
async def exchange_in(ref: Ref, body: ExchangeInRequest, uow: UoW, caller: PartnerKey) -> ExchangeRead:
    """Credit the member you linked as `ref` with our points for `partner_points` of yours, at your rate
    (rounded down), once per `partner_ref`: the same transfer again is 409 `exchange_already_recorded` (its
    `exchange_id` names it), also once the link has ended, either side was suspended or your rate in was
    withdrawn or changed since.
    Your daily limits apply. Emits `partner.exchange_received`.

    For `partner` keys only; honours `Idempotency-Key`."""
    done = await exchanges.exchange_in(
        uow,
        _partner_of(caller),
        ref,
        partner_ref=body.partner_ref,
        partner_points=body.partner_points,
        actor=caller.key_id,
    )
    return ExchangeRead.model_validate(done)


@router.get(
    "/partner/exchanges/{exchange_id}",
    summary="Read one of your exchanges",
    responses=problem_responses(*_AUTH, ExchangeNotFound),
)
async def read_exchange(exchange_id: uuid.UUID, uow: UoW, caller: PartnerKey) -> ExchangeRead:
    """An exchange with you, either way, while your partnership is suspended too. Another partner's is 404
    `exchange_not_found`.

    For `partner` keys only. Reads only."""
    return ExchangeRead.model_validate(await exchanges.get_exchange(uow, _partner_of(caller), exchange_id))


@router.post(
    "/partner/exchanges/{exchange_id}/confirm",
    summary="Confirm you credited an exchange out",
    responses=problem_responses(*_AUTH, ExchangeNotFound, ExchangeNotPending),
)
async def confirm_exchange(exchange_id: uuid.UUID, uow: UoW, caller: PartnerKey) -> ExchangeRead:
    """You credited your customer: the exchange is `confirmed`. Only a pending exchange within its time limit
    can be (409 `exchange_not_pending`; one that timed out has been given back to the member, so do not
    credit it). While your partnership is suspended you may still answer the exchanges pending with you (their
    time limit keeps running), though you can start none. Emits `partner.exchange_resolved`, unless the
    member was erased since (`member.erased` told you).

    For `partner` keys only; honours `Idempotency-Key`."""
    return ExchangeRead.model_validate(await exchanges.confirm(uow, _partner_of(caller), exchange_id))


@router.post(
    "/partner/exchanges/{exchange_id}/fail",
    summary="Say you could not credit an exchange out",
    responses=problem_responses(*_AUTH, ExchangeNotFound, ExchangeNotPending),
)
async def fail_exchange(exchange_id: uuid.UUID, uow: UoW, caller: PartnerKey) -> ExchangeRead:
    """You could not credit your customer: the exchange is `failed` and the member gets the points back. As
    for a confirmation: only a pending exchange within its time limit, while you are suspended too. Emits
    `partner.exchange_resolved`, unless the member was erased since.

    For `partner` keys only; honours `Idempotency-Key`."""
    return ExchangeRead.model_validate(await exchanges.fail(uow, _partner_of(caller), exchange_id))


_CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}
From = Annotated[QueryInstant, Query(alias="from", description="The first instant counted.")]
To = Annotated[QueryInstant, Query(description="The first instant not counted.")]


def _statement_answer(statement: settlement.Settlement, as_csv: bool) -> Response | SettlementRead:
    if as_csv:
        return csv_response(settlement.as_csv(statement))
    return SettlementRead.model_validate(statement)


@router.get(
    "/partners/{code}/settlements",
    summary="A partner's settlement statement",
    response_model=SettlementRead,
    responses=problem_responses(*_AUTH, PartnerNotFound, InvalidField) | _CSV,
)
async def read_settlement(
    code: PartnerCode, start: From, to: To, as_csv: ReportAsCsv, uow: UoW, _: Operator
) -> Response | SettlementRead:
    """What moved between the programme and the partner in [`from`, `to`): points earned at the partner,
    taken back by refunds, exchanged out, given back, exchanged in, with their value and the partner's
    points; each a sum over the ledger. JSON, or CSV when `Accept` prefers `text/csv` to `application/json`
    (by q-value: `application/json, text/csv;q=0` is JSON); without `Accept`, or with one that accepts
    neither, JSON.

    For `admin` keys only. Reads only."""
    return _statement_answer(await settlement.settlement(uow, code, start, to), as_csv)


@router.get(
    "/partner/settlements",
    summary="Your settlement statement",
    response_model=SettlementRead,
    responses=problem_responses(*_AUTH, InvalidField) | _CSV,
)
async def read_own_settlement(
    start: From, to: To, as_csv: ReportAsCsv, uow: UoW, caller: PartnerKey
) -> Response | SettlementRead:
    """Your statement for [`from`, `to`), as the operator reads it (see
    `GET /v1/partners/{code}/settlements`), while you are suspended too. JSON, or CSV when `Accept` prefers
    `text/csv`, as there.

    For `partner` keys only. Reads only."""
    return _statement_answer(await settlement.own_settlement(uow, _partner_of(caller), start, to), as_csv)


@router.get(
    "/members/{member_id}/partner-perks",
    summary="The partners' perks a member's paid plans gave them",
    responses=problem_responses(*_AUTH, MemberNotFound, InvalidField),
)
async def list_member_perks(member_id: uuid.UUID, uow: UoW, _: MemberDesk, paging: Paging) -> PartnerPerkPage:
    """The perk codes the member's paid plans gave them, one per perk and paid period, newest first, with
    whether the partner has redeemed each.

    For `pos`, `ecommerce` and `admin` keys. Reads only."""
    page = await service.member_perks(uow, member_id, limit=paging.limit, cursor=paging.cursor)
    return PartnerPerkPage(
        items=[PartnerPerkRead.model_validate(p) for p in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/partner/perks/{code}/redeem",
    summary="Redeem a perk one of our paid plans gave a customer",
    responses=problem_responses(*_AUTH, PerkNotFound, PerkAlreadyRedeemed, MemberNotActive, PartnerNotActive),
)
async def redeem_perk(
    code: Annotated[str, Path(max_length=64, description="The code the customer showed you")],
    uow: UoW,
    caller: PartnerKey,
) -> PartnerPerkRead:
    """Honour a perk once: the code the member shows you (told to you by `partner.perk_granted`), one we
    issued or one from your pool (exactly as you uploaded it). A code that is not one of your perks, or is a
    perk of a member erased since (it ended with them), is 404 `perk_not_found`; a redeemed one 409
    `perk_already_redeemed`; one of a member suspended or closed (who holds no benefits) 409
    `member_not_active`.

    For `partner` keys only; honours `Idempotency-Key`."""
    return PartnerPerkRead.model_validate(await service.redeem_perk(uow, _partner_of(caller), code))


@router.post(
    "/partner/members/{ref}/benefit-uses",
    status_code=201,
    summary="Record that your customer used a joint benefit",
    responses=problem_responses(*_AUTH, LinkNotFound, PartnerNotActive, NotEntitled, BenefitUseRecorded),
)
async def record_benefit_use(
    ref: Ref, body: BenefitUseRequest, uow: UoW, caller: PartnerKey
) -> BenefitUseRead:
    """At your till or checkout: the member you linked as `ref` used one of your joint benefits. Only one they
    are entitled to now (409 `benefit_not_entitled`), once per `use_ref` (409
    `benefit_use_already_recorded`). Emits `partner.benefit_used`; settlements count the uses.

    For `partner` keys only; honours `Idempotency-Key`."""
    used = await coalition.record_benefit_use(
        uow, _partner_of(caller), ref, benefit_id=body.benefit_id, use_ref=body.use_ref
    )
    return BenefitUseRead.model_validate(used)


@router.post(
    "/partner/perk-codes",
    summary="Upload codes for one of your perks our paid plans include",
    responses=problem_responses(*_AUTH, PerkPoolNotFound, PartnerNotActive),
)
async def upload_perk_codes(body: PerkCodesUpload, uow: UoW, caller: PartnerKey) -> PerkCodesUploadRead:
    """Add codes to the pool of a perk that paid plans include from you with source `pool`: each paid period
    that begins gives the member the pool's oldest unused code. A perk given while the pool was empty is owed
    and gets one of these codes now, oldest first, told to you by `partner.perk_granted`. A code you uploaded
    before, or twice here, is left out (`duplicates`), so an upload can be sent again. A perk no plan offers
    from your pool is 404 `perk_pool_not_found`.

    For `partner` keys only; honours `Idempotency-Key`."""
    done = await perk_pools.upload_codes(uow, _partner_of(caller), perk=body.perk, codes=body.codes)
    return PerkCodesUploadRead.model_validate(done)


@router.get(
    "/partner/perk-codes/{perk}",
    summary="How many codes are left in one of your perk pools",
    responses=problem_responses(*_AUTH, PerkPoolNotFound, PartnerNotActive),
)
async def read_perk_pool(perk: PerkKey, uow: UoW, caller: PartnerKey) -> PerkPoolRead:
    """The codes of the perk's pool not given yet, and the perks owed while it was empty: upload at least
    `owed` codes, and some to spare.

    For `partner` keys only. Reads only."""
    return PerkPoolRead.model_validate(await perk_pools.pool_status(uow, _partner_of(caller), perk))
