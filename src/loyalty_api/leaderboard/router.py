"""The points leaderboard, for the apps and screens that show it."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from loyalty_api.analytics.periods import Period
from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import EmptyIsLeftOut, Paging, UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.schemas import QueryInstant
from loyalty_api.http.transaction import UnitOfWorkRoute
from loyalty_api.leaderboard import service
from loyalty_api.leaderboard.schemas import LeaderboardRead

router = APIRouter(prefix="/v1", tags=["activities"], route_class=UnitOfWorkRoute)

Reader = Annotated[Principal, Depends(require(Scope.admin, Scope.pos, Scope.ecommerce))]


@router.get(
    "/leaderboard",
    summary="Who earned the most points this week or month",
    responses=problem_responses(InvalidApiKey, ScopeNotAllowed, InvalidField),
)
async def read_leaderboard(
    uow: UoW,
    _: Reader,
    paging: Paging,
    period: Annotated[
        Literal["week", "month"],
        Query(description="A week from Monday, or a calendar month, in the programme's time zone."),
        EmptyIsLeftOut,
    ] = "week",
    at: Annotated[
        QueryInstant | None,
        Query(alias="from", description="An instant in the period to show (left out: the current one)."),
        EmptyIsLeftOut,
    ] = None,
) -> LeaderboardRead:
    """The members who earned the most points in the period (purchases made in it, a till's receipt synced
    late by its `occurred_at`; referrals and activities; less what refunds took back of them, whenever they
    came; not exchanges in or adjustments), among active members who opted in with
    `leaderboard_opt_in` on the member. Each is shown by id and a masked card number, never by name, phone or
    e-mail. Pages like every list (`limit`, `cursor`); send the same `period` and `from` for each page.

    For `pos`, `ecommerce` and `admin` keys. Reads only."""
    found = await service.leaderboard(
        uow, period=Period(period), at=at, limit=paging.limit, cursor=paging.cursor
    )
    return LeaderboardRead.model_validate(found)
