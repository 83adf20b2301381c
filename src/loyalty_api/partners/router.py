"""Partners: the registry (admin), a member's consent and links (our tills and shop), and what a partner's
own system reads and does for the members linked to it (`/v1/partner/...`, partner keys only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.db.pagination import page_after
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import Paging, UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.transaction import UnitOfWorkRoute
from loyalty_api.members.errors import MemberNotFound
from loyalty_api.partners import service
from loyalty_api.partners.errors import (
    AlreadyLinked,
    LinkCodeInvalid,
    LinkNotFound,
    PartnerExists,
    PartnerNotActive,
    PartnerNotFound,
)
from loyalty_api.partners.schemas import (
    CustomerRef,
    LinkCodeRead,
    LinkCodeRequest,
    LinkPage,
    LinkRead,
    LinkRequest,
    PartnerCode,
    PartnerCreate,
    PartnerMemberRead,
    PartnerPage,
    PartnerRead,
    PartnerWrite,
)
from loyalty_api.points.errors import MemberNotActive

router = APIRouter(prefix="/v1", tags=["partners"], route_class=UnitOfWorkRoute)

Operator = Annotated[Principal, Depends(require(Scope.admin))]
MemberDesk = Annotated[Principal, Depends(require(Scope.admin, Scope.pos, Scope.ecommerce))]
PartnerKey = Annotated[Principal, Depends(require(Scope.partner))]
Ref = Annotated[CustomerRef, Path(description="Your id of the customer, as you linked them")]
_AUTH = (InvalidApiKey, ScopeNotAllowed)


def _partner_of(caller: Principal) -> uuid.UUID:
    assert caller.partner_id is not None  # a partner key names its partner (keys create refuses otherwise)
    return caller.partner_id


@router.post(
    "/partners",
    status_code=201,
    summary="Register a partner brand",
    responses=problem_responses(*_AUTH, PartnerExists),
)
async def create_partner(body: PartnerCreate, uow: UoW, _: Operator) -> PartnerRead:
    """Register a brand that runs joint membership with the programme. Its system then calls with keys bound
    to it: `loyalty-api keys create --scope partner --partner <id>`.

    For `admin` keys only; honours `Idempotency-Key`. A code taken already is 409 `partner_exists`."""
    return PartnerRead.model_validate(await service.create_partner(uow, code=body.code, name=body.name))


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
    return PartnerRead.model_validate(await service.get_partner(uow, code))


@router.put(
    "/partners/{code}",
    summary="Rename or suspend a partner",
    responses=problem_responses(*_AUTH, PartnerNotFound),
)
async def replace_partner(code: PartnerCode, body: PartnerWrite, uow: UoW, _: Operator) -> PartnerRead:
    """Change a partner's name or status. A suspended partner's keys reach no member (409
    `partner_not_active`) and it cannot be linked to; its links stay, and work again once it is active.

    For `admin` keys only."""
    return PartnerRead.model_validate(
        await service.update_partner(uow, code, name=body.name, status=body.status)
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
        links, limit=paging.limit, cursor=paging.cursor, key=lambda k: (k.partner,), shape=(str,)
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
    (the same answer for each). Emits `partner.linked`.

    For `partner` keys only; honours `Idempotency-Key`."""
    partner_id = _partner_of(caller)
    linked = await service.link(
        uow, partner_id, code=body.code, partner_customer_ref=body.partner_customer_ref
    )
    return PartnerMemberRead.model_validate(
        await service.partner_view(uow, partner_id, linked.partner_customer_ref)
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
    return PartnerMemberRead.model_validate(await service.partner_view(uow, _partner_of(caller), ref))
