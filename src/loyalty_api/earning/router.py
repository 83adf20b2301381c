"""/v1/earning-rules: bonus points configuration (admin)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.earning import service
from loyalty_api.earning.errors import EarningRuleNotFound
from loyalty_api.earning.schemas import EarningRuleList, EarningRuleRead, EarningRuleWrite
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.transaction import UnitOfWorkRoute

router = APIRouter(prefix="/v1/earning-rules", tags=["earning rules"], route_class=UnitOfWorkRoute)
Operator = Annotated[Principal, Depends(require(Scope.admin))]
_AUTH = (InvalidApiKey, ScopeNotAllowed)


@router.post(
    "", status_code=201, summary="Create an earning rule", responses=problem_responses(*_AUTH, InvalidField)
)
async def create_rule(body: EarningRuleWrite, uow: UoW, _: Operator) -> EarningRuleRead:
    return EarningRuleRead.of(await service.create_rule(uow, body.definition()))


@router.get("", summary="List earning rules, highest priority first", responses=problem_responses(*_AUTH))
async def list_rules(uow: UoW, _: Operator) -> EarningRuleList:
    return EarningRuleList(items=[EarningRuleRead.of(r) for r in await service.list_rules(uow)])


@router.get(
    "/{rule_id}", summary="Read an earning rule", responses=problem_responses(*_AUTH, EarningRuleNotFound)
)
async def read_rule(rule_id: uuid.UUID, uow: UoW, _: Operator) -> EarningRuleRead:
    return EarningRuleRead.of(await service.get_rule(uow, rule_id))


@router.put(
    "/{rule_id}",
    summary="Replace an earning rule",
    responses=problem_responses(*_AUTH, EarningRuleNotFound, InvalidField),
)
async def replace_rule(rule_id: uuid.UUID, body: EarningRuleWrite, uow: UoW, _: Operator) -> EarningRuleRead:
    return EarningRuleRead.of(await service.replace_rule(uow, rule_id, body.definition()))


@router.delete(
    "/{rule_id}",
    status_code=204,
    summary="Delete an earning rule (past earns keep their breakdown)",
    responses=problem_responses(*_AUTH, EarningRuleNotFound),
)
async def delete_rule(rule_id: uuid.UUID, uow: UoW, _: Operator) -> Response:
    await service.delete_rule(uow, rule_id)
    return Response(status_code=204)
