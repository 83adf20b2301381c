"""/v1/program: the programme's settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.http.dependencies import UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.transaction import UnitOfWorkRoute
from loyalty_api.program import service
from loyalty_api.program.errors import CurrencyInUse
from loyalty_api.program.schemas import ProgramRead, ProgramWrite

router = APIRouter(prefix="/v1/program", tags=["programme"], route_class=UnitOfWorkRoute)
_AUTH = (InvalidApiKey, ScopeNotAllowed)


@router.get("", summary="Read the programme's settings", responses=problem_responses(*_AUTH))
async def read_program(
    uow: UoW, _: Annotated[Principal, Depends(require(Scope.admin, Scope.pos, Scope.ecommerce))]
) -> ProgramRead:
    """The programme's settings: currency and time zone, the earn rate (points per major currency unit), what
    a point is worth when redeemed, rounding, expiry, the minimum redemption and the largest share of an order
    points may pay, and how tiers fall at review.

    For `pos`, `ecommerce` and `admin` keys. Reads only."""
    return ProgramRead.model_validate(await service.get_program(uow))


@router.put(
    "", summary="Replace the programme's settings", responses=problem_responses(*_AUTH, CurrencyInUse)
)
async def put_program(
    body: ProgramWrite, uow: UoW, _: Annotated[Principal, Depends(require(Scope.admin))]
) -> ProgramRead:
    """Replace the programme's settings, all of them. Rates are decimal strings (`earn_rate` `"1"`: a point
    per yuan; `point_value_minor` `"1"`: a point is worth one fen). They apply from now on, in every
    process at once (on SQLite, processes other than this one within `LOYALTY_CACHE_SECONDS`).

    The currency is for good once amounts are recorded in it (orders, points, prices, discounts, spend
    thresholds): a change is 409 `currency_in_use`, naming where.

    For `admin` keys only. PUT does not take `Idempotency-Key`: it replaces, so a repeat sets the same values.
    Emits `program.updated`, unless the settings are those in force already (a repeat changes nothing)."""
    return ProgramRead.model_validate(await service.put_program(uow, body.settings()))
