"""`checkoutQuote`: the same service, input rules and answer as POST /v1/checkout/quote."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from pydantic import ValidationError
from strawberry.types import Info

from graphql import GraphQLError
from loyalty_api.auth.principal import Scope
from loyalty_api.checkout import service
from loyalty_api.checkout.schemas import QUOTE_DESCRIPTION, QuoteRequest
from loyalty_api.errors import InvalidField
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.cost import assumed
from loyalty_api.graphql.enums import (
    AppliesToEnum,
    BenefitKindEnum,
    CappedByEnum,
    CouponRejectionReason,
    DiscountSource,
)
from loyalty_api.graphql.errors import domain_errors, require
from loyalty_api.graphql.money import Long, Money, MoneyInput
from loyalty_api.graphql.tiers import Tier
from loyalty_api.graphql.user_errors import input_path
from loyalty_api.http.input_guard import check_strings
from loyalty_api.http.problems import described

QUOTERS = (Scope.admin, Scope.pos, Scope.ecommerce)


@strawberry.input
class CartItemInput:
    sku: str
    category: str | None = None
    quantity: int
    unit_price: MoneyInput


@strawberry.input
class CartInput:
    subtotal: MoneyInput = strawberry.field(
        description="The goods before any discount, without shipping; what it has beyond the items is an "
        "unitemized remainder."
    )
    shipping: MoneyInput | None = strawberry.field(default=None, description="Default: no shipping (0).")
    items: list[CartItemInput] = strawberry.field(
        default_factory=list, description="quantity × unitPrice summed must not exceed the subtotal."
    )


@strawberry.input
class CheckoutQuoteInput:
    member_id: strawberry.ID
    cart: CartInput
    coupon_codes: list[str] = strawberry.field(
        default_factory=list, description="The member's coupons to apply (distinct, at most 10)."
    )
    points_to_use: Long | None = strawberry.field(
        default=None,
        description="Points the member wants to pay with; leave out to see only how many may be.",
    )
    channel: str | None = strawberry.field(default=None, description="`store` or `online`.")


@strawberry.type
class CheckoutDiscount:
    source: str = strawberry.field(graphql_type=DiscountSource)
    source_ref: str = strawberry.field(description="The tier's code, or the coupon's code as named")
    source_name: str
    benefit_id: strawberry.ID | None = strawberry.field(description="Null for a coupon")
    kind: str = strawberry.field(graphql_type=BenefitKindEnum)
    name: str
    amount: Money = strawberry.field(description="What the discount actually takes off")
    applies_to: str = strawberry.field(graphql_type=AppliesToEnum)


@strawberry.type
class CheckoutCouponRejection:
    code: str
    reason: str = strawberry.field(graphql_type=CouponRejectionReason)
    detail: str


@strawberry.type
class CheckoutPerk:
    name: str
    description: str
    source: str = strawberry.field(graphql_type=DiscountSource)
    source_ref: str
    source_name: str
    benefit_id: strawberry.ID | None


@strawberry.type
class CheckoutPoints:
    available: Long
    max_usable: Long
    max_value: Money
    applied: Long
    applied_value: Money
    capped_by: str = strawberry.field(graphql_type=CappedByEnum)


@strawberry.type(description="What a member pays for a cart; all money in the programme's currency.")
class CheckoutQuote:
    member_id: strawberry.ID
    tier: Tier | None
    currency: str
    subtotal: Money
    shipping: Money
    discounts: list[CheckoutDiscount] = strawberry.field(directives=[assumed(10)])
    coupons_applied: list[str]
    coupons_rejected: list[CheckoutCouponRejection] = strawberry.field(directives=[assumed(10)])
    perks: list[CheckoutPerk] = strawberry.field(directives=[assumed(10)])
    goods_total: Money
    shipping_total: Money
    points: CheckoutPoints
    total: Money

    @classmethod
    def of(cls, quote: service.Quote) -> CheckoutQuote:
        points = quote.points
        return cls(
            member_id=strawberry.ID(str(quote.member_id)),
            tier=None if quote.tier is None else Tier.of(quote.tier),
            currency=quote.currency,
            subtotal=Money.of(quote.subtotal),
            shipping=Money.of(quote.shipping),
            discounts=[
                CheckoutDiscount(
                    source=d.source,
                    source_ref=d.source_ref,
                    source_name=d.source_name,
                    benefit_id=_id(d.benefit_id),
                    kind=d.kind,
                    name=d.name,
                    amount=Money.of(d.amount),
                    applies_to=d.applies_to,
                )
                for d in quote.discounts
            ],
            coupons_applied=list(quote.coupons_applied),
            coupons_rejected=[
                CheckoutCouponRejection(code=r.code, reason=r.reason, detail=r.detail)
                for r in quote.coupons_rejected
            ],
            perks=[
                CheckoutPerk(
                    name=p.name,
                    description=p.description,
                    source=p.source,
                    source_ref=p.source_ref,
                    source_name=p.source_name,
                    benefit_id=_id(p.benefit_id),
                )
                for p in quote.perks
            ],
            goods_total=Money.of(quote.goods_total),
            shipping_total=Money.of(quote.shipping_total),
            points=CheckoutPoints(
                available=Long(points.available),
                max_usable=Long(points.max_usable),
                max_value=Money.of(points.max_value),
                applied=Long(points.applied),
                applied_value=Money.of(points.applied_value),
                capped_by=points.capped_by,
            ),
            total=Money.of(quote.total),
        )


def _id(value: uuid.UUID | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


def _money(value: MoneyInput | None) -> dict[str, Any] | None:
    return None if value is None else {"amount": value.amount, "currency": value.currency}


def _request(data: CheckoutQuoteInput, max_depth: int) -> QuoteRequest:
    """The input checked by the same rules as the REST body; a refusal has the REST `validation_error`."""
    body = {
        "member_id": str(data.member_id),
        "cart": {
            "subtotal": _money(data.cart.subtotal),
            "shipping": _money(data.cart.shipping),
            "items": [
                {
                    "sku": i.sku,
                    "category": i.category,
                    "quantity": i.quantity,
                    "unit_price": _money(i.unit_price),
                }
                for i in data.cart.items
            ],
        },
        "coupon_codes": list(data.coupon_codes),
        "points_to_use": data.points_to_use,
        "channel": data.channel,
    }
    with domain_errors():
        check_strings(body, max_depth=max_depth)
    try:
        return QuoteRequest.model_validate(body)
    except ValidationError as exc:
        errors = [
            {
                "field": input_path(location),  # as the GraphQL input names it, as a mutation's errors
                "message": message,  # saying nothing of the input (its value is read only to check that)
                "type": error["type"],
            }
            for error in exc.errors(include_url=False)
            for location, message in [described(error)]
        ]
        fields = ", ".join(sorted({str(e["field"]) for e in errors}))
        raise GraphQLError(
            f"The input has invalid or missing values: {fields}",
            extensions={"code": "validation_error", "status": 422, "errors": errors},
        ) from None


async def _checkout_quote(info: Info[GraphQLContext, None], input: CheckoutQuoteInput) -> CheckoutQuote:
    require(info.context, *QUOTERS)
    request = _request(input, info.context.units.settings.max_json_depth)
    async with info.context.snapshot.read() as uow:
        with domain_errors():
            try:
                result = await service.quote(
                    uow,
                    member_id=request.member_id,
                    cart=request.cart.cart(),
                    coupon_codes=request.coupon_codes,
                    points_to_use=request.points_to_use,
                    channel=request.channel,
                )
            except InvalidField as exc:
                raise _named_as_input(exc) from exc
    return CheckoutQuote.of(result)


def _named_as_input(exc: InvalidField) -> InvalidField:
    """The service's refusal of a value (one coupon named twice) names REST's field, `coupon_codes`: the
    answer names it as the GraphQL input does, `couponCodes`, as the input's own checks above do."""
    named = [(input_path(field), message) for field, message in exc.fields]
    return InvalidField(*named[0], *named[1:])


@strawberry.type
class CheckoutQueries:
    loyalty_checkout_quote: CheckoutQuote = strawberry.field(
        resolver=_checkout_quote,
        description="What a member pays for a cart; read-only, the same answer as POST /v1/checkout/quote."
        + QUOTE_DESCRIPTION,
    )
