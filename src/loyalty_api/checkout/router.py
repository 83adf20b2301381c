"""The checkout quote: read-only, so it runs in a read-only unit of work although it is a POST."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.checkout import service
from loyalty_api.checkout.errors import CartItemsExceedSubtotal
from loyalty_api.checkout.schemas import QUOTE_DESCRIPTION, QuoteRead, QuoteRequest
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import UoW, require
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.transaction import QueryRoute
from loyalty_api.members.errors import MemberNotActive, MemberNotFound
from loyalty_api.points.errors import CurrencyMismatch

router = APIRouter(prefix="/v1/checkout", tags=["checkout"], route_class=QueryRoute)

Till = Annotated[Principal, Depends(require(Scope.admin, Scope.pos, Scope.ecommerce))]


@router.post(
    "/quote",
    summary="What a member pays for a cart (read-only)",
    description=QUOTE_DESCRIPTION,
    responses=problem_responses(
        InvalidApiKey,
        ScopeNotAllowed,
        MemberNotFound,
        MemberNotActive,
        CurrencyMismatch,
        CartItemsExceedSubtotal,
        InvalidField,
    ),
)
async def quote(body: QuoteRequest, uow: UoW, _: Till) -> QuoteRead:
    result = await service.quote(
        uow,
        member_id=body.member_id,
        cart=body.cart.cart(),
        coupon_codes=body.coupon_codes,
        points_to_use=body.points_to_use,
        channel=body.channel,
    )
    return QuoteRead.model_validate(result)
