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
from loyalty_api.http.dependencies import UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.transaction import UnitOfWorkRoute
from loyalty_api.members.errors import MemberNotFound

router = APIRouter(prefix="/v1", tags=["benefits"], route_class=UnitOfWorkRoute)
Reader = Annotated[Principal, Depends(require(Scope.admin, Scope.pos, Scope.ecommerce))]
Operator = Annotated[Principal, Depends(require(Scope.admin))]
_AUTH = (InvalidApiKey, ScopeNotAllowed)


@router.post("/benefits", status_code=201, summary="Create a benefit", responses=problem_responses(*_AUTH))
async def create_benefit(body: BenefitWrite, uow: UoW, _: Operator) -> BenefitRead:
    return BenefitRead.of(await service.create_benefit(uow, body.definition()))


@router.get(
    "/benefits", summary="List benefits, with the tiers that give them", responses=problem_responses(*_AUTH)
)
async def list_benefits(uow: UoW, _: Reader) -> BenefitList:
    return BenefitList(items=[BenefitRead.of(b) for b in await service.list_benefits(uow)])


@router.get(
    "/benefits/{benefit_id}", summary="Read a benefit", responses=problem_responses(*_AUTH, BenefitNotFound)
)
async def read_benefit(benefit_id: uuid.UUID, uow: UoW, _: Reader) -> BenefitRead:
    return BenefitRead.of(await service.get_benefit(uow, benefit_id))


@router.put(
    "/benefits/{benefit_id}",
    summary="Replace a benefit",
    responses=problem_responses(*_AUTH, BenefitNotFound),
)
async def replace_benefit(benefit_id: uuid.UUID, body: BenefitWrite, uow: UoW, _: Operator) -> BenefitRead:
    return BenefitRead.of(await service.replace_benefit(uow, benefit_id, body.definition()))


@router.delete(
    "/benefits/{benefit_id}",
    status_code=204,
    summary="Delete a benefit (tiers that gave it stop giving it)",
    responses=problem_responses(*_AUTH, BenefitNotFound),
)
async def delete_benefit(benefit_id: uuid.UUID, uow: UoW, _: Operator) -> Response:
    await service.delete_benefit(uow, benefit_id)
    return Response(status_code=204)


@router.get(
    "/members/{member_id}/benefits",
    summary="The benefits a member has now, and where each comes from",
    responses=problem_responses(*_AUTH, MemberNotFound),
)
async def read_member_benefits(member_id: uuid.UUID, uow: UoW, _: Reader) -> MemberBenefitsRead:
    return MemberBenefitsRead.of(await service.member_benefits(uow, member_id))
