"""FastAPI dependencies shared by the routers: the unit of work, the caller, paging."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPBearer
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError, PydanticUseDefault

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


def _left_out_when_empty(value: object) -> object:
    if value == "":
        raise PydanticUseDefault()
    if isinstance(value, list):  # a parameter that may be repeated (`?type=earn&type=`)
        given = [part for part in value if part != ""]
        if not given:
            raise PydanticUseDefault()
        return given
    return value


# Marks an optional query parameter of a list whose empty value (`?tier=`) is the parameter left out: no
# filter, or its default. A generated client or a URL template sends an optional value it has none of so, as
# it sends `?cursor=` before there is a next page; read as a value it filtered on nothing (an empty page) or
# was a 422, depending on the parameter's type. The document is unchanged: the parameter stays optional.
EmptyIsLeftOut = BeforeValidator(_left_out_when_empty)


_DIGITS = re.compile(r"-?[0-9]+")


def _written_in_digits(value: object) -> object:
    if isinstance(value, str) and _DIGITS.fullmatch(value) is None:
        raise PydanticCustomError(
            "int_parsing", "Input should be a valid integer, unable to parse string as an integer"
        )
    return value


# An integer in a URL (a page's `limit`, a birthday month, a ladder version): its decimal digits, leading
# zeros taken (`03`), and a minus sign, so that `-1` is refused as out of range. Pydantic reads an integer's
# text as Python does: `?limit=1.0` was 1, `?limit=1_0` 10, ` 10` and `+10` 10, where `?limit=abc` is 422;
# each is now the same 422 as `abc`. (A JSON body's `12.0` is a number, read by the body's own rules.) Placed
# after the parameter's Query() or Path(), which the document reads its bounds from, and before
# EmptyIsLeftOut, which then reads an empty value first.
InDigits = BeforeValidator(_written_in_digits)


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    cursor: str | None


async def page_params(  # async: FastAPI runs a plain callable, a class too, in a thread
    limit: Annotated[
        int,
        Query(ge=1, le=MAX_LIMIT, description="Items per page (at most 200)"),
        InDigits,
        EmptyIsLeftOut,
    ] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=64, description="`next_cursor` of the previous page; left out or empty: the first"),
        EmptyIsLeftOut,
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


Paging = Annotated[PageParams, Depends(page_params)]
