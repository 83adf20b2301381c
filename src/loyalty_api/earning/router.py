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
from loyalty_api.http.dependencies import Paging, UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.transaction import UnitOfWorkRoute

router = APIRouter(prefix="/v1/earning-rules", tags=["earning rules"], route_class=UnitOfWorkRoute)
Operator = Annotated[Principal, Depends(require(Scope.admin))]
_AUTH = (InvalidApiKey, ScopeNotAllowed)


@router.post(
    "", status_code=201, summary="Create an earning rule", responses=problem_responses(*_AUTH, InvalidField)
)
async def create_rule(body: EarningRuleWrite, uow: UoW, _: Operator) -> EarningRuleRead:
    """Add an earning rule: a `kind` (`base_rate`, `category_bonus`, `sku_bonus`, `birthday`, `member_day`)
    and that kind's `properties`, with a `priority` (higher runs first), `stackable`, `active` and an optional
    validity window. Every kind may be limited to some `channels` and `store_ids`.

    For `admin` keys only; honours `Idempotency-Key`. It applies to earns from now on. Emits
    `earning_rule.changed`."""
    return EarningRuleRead.of(await service.create_rule(uow, body.definition()))


@router.get(
    "",
    summary="List earning rules, highest priority first",
    responses=problem_responses(*_AUTH, InvalidField),
)
async def list_rules(uow: UoW, _: Operator, paging: Paging) -> EarningRuleList:
    """Every earning rule, active or not, highest priority first, page by page.

    For `admin` keys only. Reads only."""
    page = await service.list_rules(uow, limit=paging.limit, cursor=paging.cursor)
    return EarningRuleList(items=[EarningRuleRead.of(r) for r in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{rule_id}", summary="Read an earning rule", responses=problem_responses(*_AUTH, EarningRuleNotFound)
)
async def read_rule(rule_id: uuid.UUID, uow: UoW, _: Operator) -> EarningRuleRead:
    """One earning rule, its kind's properties in full (defaults filled in).

    For `admin` keys only. Reads only."""
    return EarningRuleRead.of(await service.get_rule(uow, rule_id))


@router.put(
    "/{rule_id}",
    summary="Replace an earning rule",
    responses=problem_responses(*_AUTH, EarningRuleNotFound, InvalidField),
)
async def replace_rule(rule_id: uuid.UUID, body: EarningRuleWrite, uow: UoW, _: Operator) -> EarningRuleRead:
    """Replace an earning rule with the one sent, every field (the `kind` may change). Earns already made keep
    the breakdown they were given.

    For `admin` keys only. PUT does not take `Idempotency-Key`: it replaces, so a repeat sets the same values.
    Emits `earning_rule.changed`, unless the rule is as sent already (a repeat changes nothing)."""
    return EarningRuleRead.of(await service.replace_rule(uow, rule_id, body.definition()))


@router.delete(
    "/{rule_id}",
    status_code=204,
    summary="Delete an earning rule (past earns keep their breakdown)",
    responses=problem_responses(*_AUTH, EarningRuleNotFound),
)
async def delete_rule(rule_id: uuid.UUID, uow: UoW, _: Operator) -> Response:
    """Delete an earning rule; earns already made keep the breakdown that names it. Answers 204 with no body.
    To pause a rule instead, replace it with `active: false`.

    For `admin` keys only. Emits `earning_rule.changed`."""
    await service.delete_rule(uow, rule_id)
    return Response(status_code=204)
