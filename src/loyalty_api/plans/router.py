"""/v1/plans: the paid memberships on sale (admin to change; shops and tills read them to sell them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import Paging, UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.schemas import PlanCode
from loyalty_api.http.transaction import UnitOfWorkRoute
from loyalty_api.plan_catalogue.errors import PlanNotFound
from loyalty_api.plans import errors, service
from loyalty_api.plans.schemas import PlanCreate, PlanList, PlanRead, PlanWrite
from loyalty_api.points.errors import CurrencyMismatch

router = APIRouter(prefix="/v1", tags=["paid membership"], route_class=UnitOfWorkRoute)
Reader = Annotated[Principal, Depends(require(Scope.admin, Scope.pos, Scope.ecommerce, Scope.billing))]
Operator = Annotated[Principal, Depends(require(Scope.admin))]
_AUTH = (InvalidApiKey, ScopeNotAllowed)


@router.get("/plans", summary="Every plan, by code", responses=problem_responses(*_AUTH, InvalidField))
async def list_plans(uow: UoW, _: Reader, paging: Paging) -> PlanList:
    """Every paid-membership plan, active or not, by code, page by page: price per period, interval, trial
    and grace days, benefits and recurring coupons.

    For `pos`, `ecommerce`, `billing` and `admin` keys. Reads only."""
    page = await service.list_plans(uow, limit=paging.limit, cursor=paging.cursor)
    return PlanList(items=[PlanRead.of(p) for p in page.items], next_cursor=page.next_cursor)


@router.post(
    "/plans",
    status_code=201,
    summary="Create a plan",
    responses=problem_responses(*_AUTH, errors.PlanExists, InvalidField, CurrencyMismatch),
)
async def create_plan(body: PlanCreate, uow: UoW, _: Operator) -> PlanRead:
    """Create a paid-membership plan: `price` per period, `interval` (`month` or `year`, times `count`),
    `trial_days`, `grace_days`, `benefit_ids` (they stack with the tier's) and recurring `coupons` (each
    period, or each month of it). Plans of one `family` replace each other when a member changes plan.

    For `admin` keys only; honours `Idempotency-Key`. Emits `plan.changed`."""
    return PlanRead.of(await service.create_plan(uow, body.code, body.family, body.definition()))


@router.get("/plans/{code}", summary="Read a plan", responses=problem_responses(*_AUTH, PlanNotFound))
async def read_plan(code: PlanCode, uow: UoW, _: Reader) -> PlanRead:
    """One plan, by code.

    For `pos`, `ecommerce`, `billing` and `admin` keys. Reads only."""
    return PlanRead.of(await service.get_plan(uow, code))


@router.put(
    "/plans/{code}",
    summary="Replace a plan's terms (running subscriptions move to a new price at their next period)",
    responses=problem_responses(*_AUTH, PlanNotFound, InvalidField, CurrencyMismatch),
)
async def replace_plan(code: PlanCode, body: PlanWrite, uow: UoW, _: Operator) -> PlanRead:
    """Replace a plan's terms; its code and family stay. A new price or interval applies to each running
    subscription from its next period. A new `grace_days` is at once the grace of the running ones too:
    their `benefits_until`, and a past-due one's `grace_until` (a grace shortened to an end gone by ends its
    benefits now, and the renewal job expires it as of that end). Set `active` to false to stop selling it.

    For `admin` keys only. PUT does not take `Idempotency-Key`: it replaces, so a repeat sets the same values.
    Emits `plan.changed`, unless the plan is as sent already (a repeat changes nothing)."""
    return PlanRead.of(await service.replace_plan(uow, code, body.definition()))


@router.delete(
    "/plans/{code}",
    status_code=204,
    summary="Delete a plan nobody has subscribed to (deactivate the others)",
    responses=problem_responses(*_AUTH, PlanNotFound, errors.PlanInUse),
)
async def delete_plan(code: PlanCode, uow: UoW, _: Operator) -> Response:
    """Delete a plan nobody has subscribed to; one with subscriptions is 409 `plan_in_use`: deactivate it
    instead. Answers 204 with no body.

    For `admin` keys only. Emits `plan.changed`."""
    await service.delete_plan(uow, code)
    return Response(status_code=204)
