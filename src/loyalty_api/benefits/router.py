"""/v1/benefits (admin configures, everyone reads) and a member's effective benefits."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.benefits import service
from loyalty_api.benefits.errors import BenefitNotFound
from loyalty_api.benefits.schemas import BenefitList, BenefitRead, BenefitWrite, MemberBenefitsRead
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import Paging, UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.transaction import UnitOfWorkRoute
from loyalty_api.members.errors import MemberNotFound

router = APIRouter(prefix="/v1", tags=["benefits"], route_class=UnitOfWorkRoute)
Reader = Annotated[Principal, Depends(require(Scope.admin, Scope.pos, Scope.ecommerce))]
Operator = Annotated[Principal, Depends(require(Scope.admin))]
_AUTH = (InvalidApiKey, ScopeNotAllowed)


@router.post("/benefits", status_code=201, summary="Create a benefit", responses=problem_responses(*_AUTH))
async def create_benefit(body: BenefitWrite, uow: UoW, _: Operator) -> BenefitRead:
    """Create a benefit: a `kind` (`percent_discount`, `fixed_discount`, `free_shipping`, `free_item`,
    `member_day_price`, `points_multiplier`, `birthday_gift`, `priority_service`) and its `properties`;
    discount kinds take `min_subtotal`, `categories` and `channels`. Money is in minor units of the
    programme's currency. A tier or plan gives it by naming it in `benefit_ids`.

    For `admin` keys only; honours `Idempotency-Key`. Emits `benefit.changed`."""
    return BenefitRead.of(await service.create_benefit(uow, body.definition()))


@router.get(
    "/benefits",
    summary="List benefits, oldest first, with the tiers and plans that give them",
    responses=problem_responses(*_AUTH, InvalidField),
)
async def list_benefits(uow: UoW, _: Reader, paging: Paging) -> BenefitList:
    """Every benefit, oldest first, page by page, with the tiers and plans that give it (`sources`).

    For `pos`, `ecommerce` and `admin` keys. Reads only."""
    page = await service.list_benefits(uow, limit=paging.limit, cursor=paging.cursor)
    return BenefitList(items=[BenefitRead.of(b) for b in page.items], next_cursor=page.next_cursor)


@router.get(
    "/benefits/{benefit_id}", summary="Read a benefit", responses=problem_responses(*_AUTH, BenefitNotFound)
)
async def read_benefit(benefit_id: uuid.UUID, uow: UoW, _: Reader) -> BenefitRead:
    """One benefit, its properties in full, with the tiers and plans that give it.

    For `pos`, `ecommerce` and `admin` keys. Reads only."""
    return BenefitRead.of(await service.get_benefit(uow, benefit_id))


@router.put(
    "/benefits/{benefit_id}",
    summary="Replace a benefit",
    responses=problem_responses(*_AUTH, BenefitNotFound),
)
async def replace_benefit(benefit_id: uuid.UUID, body: BenefitWrite, uow: UoW, _: Operator) -> BenefitRead:
    """Replace a benefit's name, kind, properties or `active` flag: the tiers and plans that give it give the
    new terms from now on. Coupons issued already keep theirs.

    For `admin` keys only. PUT does not take `Idempotency-Key`: it replaces, so a repeat sets the same values.
    Emits `benefit.changed`, unless the benefit is as sent already (a repeat changes nothing)."""
    return BenefitRead.of(await service.replace_benefit(uow, benefit_id, body.definition()))


@router.delete(
    "/benefits/{benefit_id}",
    status_code=204,
    summary="Delete a benefit (tiers that gave it stop giving it)",
    responses=problem_responses(*_AUTH, BenefitNotFound),
)
async def delete_benefit(benefit_id: uuid.UUID, uow: UoW, _: Operator) -> Response:
    """Delete a benefit: the tiers and plans that gave it stop giving it. Answers 204 with no body. To pause
    it instead, replace it with `active: false`.

    For `admin` keys only. Emits `benefit.changed`."""
    await service.delete_benefit(uow, benefit_id)
    return Response(status_code=204)


@router.get(
    "/members/{member_id}/benefits",
    summary="The benefits a member has now, and where each comes from",
    responses=problem_responses(*_AUTH, MemberNotFound),
)
async def read_member_benefits(member_id: uuid.UUID, uow: UoW, _: Reader) -> MemberBenefitsRead:
    """The benefits a member has now and where each comes from (`sources`: their tier, their paid plans), as
    checkout and earning apply them. A suspended or closed member has none.

    For `pos`, `ecommerce` and `admin` keys. Reads only."""
    return MemberBenefitsRead.of(await service.member_benefits(uow, member_id))
