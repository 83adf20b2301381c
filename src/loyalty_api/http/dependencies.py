"""FastAPI dependencies shared by the routers: the unit of work, the caller, paging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPBearer

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.db.pagination import MAX_LIMIT
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.http.edge import principal_of
from loyalty_api.http.rate_limits import RateLimiter
from loyalty_api.http.transaction import check_body, get_uow

UoW = Annotated[UnitOfWork, Depends(get_uow)]


async def get_units(request: Request) -> UnitsOfWork:
    units: UnitsOfWork = request.app.state.units
    return units


# For the rare route that writes beside its own unit of work (a read that leaves an audit entry).
Units = Annotated[UnitsOfWork, Depends(get_units)]


async def get_rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


# For a route whose answer spends a budget besides its key's own (a write that may tell who is a member).
Limiter = Annotated[RateLimiter, Depends(get_rate_limiter)]


class require(HTTPBearer):
    """Allow the call when the key has any of the scopes (admin is allowed everywhere it is listed).

    It is the bearer scheme itself, not a dependency on one: FastAPI resolves every level of dependencies
    anew on each request, and this is on every request."""

    def __init__(self, *scopes: Scope) -> None:
        super().__init__(
            auto_error=False, scheme_name="HTTPBearer", description="An API key: `lk_<prefix>_<secret>`"
        )
        self.allowed = frozenset(scopes)

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        principal = principal_of(request)  # verified by the edge, before the body was read
        if principal is None:
            raise InvalidApiKey.missing()
        if not principal.has_any(self.allowed):
            raise ScopeNotAllowed.needing(self.allowed)
        check_body(request)
        return principal


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    cursor: str | None


async def page_params(  # async: FastAPI runs a plain callable, a class too, in a thread
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (at most 200)")] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=64, description="`next_cursor` of the previous page; left out or empty: the first"),
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor or None)  # `?cursor=` from a URL template: the first page


Paging = Annotated[PageParams, Depends(page_params)]
