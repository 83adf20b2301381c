"""Coupons in GraphQL: a member's coupons (GET /v1/members/{id}/coupons), the Coupon entity keyed by its
code, and `loyaltyUseCoupon` (POST /v1/coupons/{code}/use), through the same services and rules."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated, Any, get_args

import strawberry
from pydantic import Field
from strawberry.types import Info

from loyalty_api.auth.principal import Principal
from loyalty_api.coupons import service
from loyalty_api.coupons.codes import normalize_code
from loyalty_api.coupons.schemas import CouponRead, CouponUse
from loyalty_api.coupons.validity import ListedStatus
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.graphql.benefits import CouponOffer, coupon_offer
from loyalty_api.graphql.connections import Connection, cursor_of, page_size, paged
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.cost import sliced, unbatched
from loyalty_api.graphql.enums import values_enum
from loyalty_api.graphql.errors import as_graphql_error, require
from loyalty_api.graphql.mutation import MutationPayload, mutation
from loyalty_api.graphql.scopes import READERS, TILLS
from loyalty_api.http.schemas import Spelling
from loyalty_api.offers import COUPON_OFFER_ADAPTER, CouponKind

CouponStatus = values_enum(
    "CouponStatus", get_args(ListedStatus), "As REST's `status`: `active` includes coupons not valid yet."
)
CouponKindEnum = values_enum("CouponKind", get_args(CouponKind), "The kind of a coupon's offer.")


@strawberry.type
class CouponSource:
    type: str = strawberry.field(description="What gave the coupon: `reward`, `birthday_gift`, …")
    id: strawberry.ID | None = strawberry.field(description="The reward, benefit, … it came from")


@strawberry.federation.type(keys=["code"], description="A single-use coupon a member holds.")
class Coupon:
    id: strawberry.ID
    code: str = strawberry.field(description="What the member shows or types at checkout; a bearer secret.")
    member_id: strawberry.ID
    name: str
    kind: str = strawberry.field(graphql_type=CouponKindEnum)
    properties: CouponOffer = strawberry.field(description="The offer, one type per `kind`.")
    currency: str = strawberry.field(description="The programme's currency, which the offer's money is in.")
    status: str = strawberry.field(graphql_type=CouponStatus)
    valid_from: datetime.datetime
    valid_until: datetime.datetime = strawberry.field(description="Usable before this instant.")
    used_at: datetime.datetime | None
    used_order_ref: str | None
    source: CouponSource
    created_at: datetime.datetime

    @classmethod
    def of(cls, read: CouponRead) -> Coupon:
        offer = COUPON_OFFER_ADAPTER.validate_python({**read.properties, "kind": read.kind})
        return cls(
            id=strawberry.ID(str(read.id)),
            code=read.code,
            member_id=strawberry.ID(str(read.member_id)),
            name=read.name,
            kind=read.kind,
            properties=coupon_offer(offer, read.currency),
            currency=read.currency,
            status=read.status,
            valid_from=read.valid_from,
            valid_until=read.valid_until,
            used_at=read.used_at,
            used_order_ref=read.used_order_ref,
            source=CouponSource(
                type=read.source.type,
                id=None if read.source.id is None else strawberry.ID(str(read.source.id)),
            ),
            created_at=read.created_at,
        )

    @classmethod
    async def resolve_reference(
        cls, info: Info[GraphQLContext, None], **representation: Any
    ) -> Coupon | None:
        principal = require(info.context, *READERS)
        code = representation.get("code")
        if not isinstance(code, str):
            raise as_graphql_error(InvalidField("representation", "a Coupon representation needs its `code`"))
        if not principal.has_any(service.MAY_NAME_CODE_ALONE):
            return None  # REST would want the member named; the same answer as an unknown code
        async with info.context.snapshot.read() as uow:
            found = await service.find_coupon(uow, code)
        return None if found is None else cls.of(CouponRead.of(found))


async def _coupons(
    root: Any,
    info: Info[GraphQLContext, None],
    first: int = 20,
    after: str | None = None,
    status: Annotated[ListedStatus | None, strawberry.argument(graphql_type=CouponStatus | None)] = None,
) -> Connection[Coupon]:
    require(info.context, *READERS)
    limit = page_size(first)
    async with info.context.snapshot.read() as uow:
        with paged():
            page = await service.list_coupons(
                uow,
                uuid.UUID(str(root.id)),
                status=status,
                limit=limit,
                cursor=cursor_of(after),
            )
    return Connection.of(
        page.items,
        page.next_cursor,
        node=lambda shown: Coupon.of(CouponRead.of(shown)),
        cursor=lambda shown: page.cursor_after(shown.coupon.id),  # REST's cursor after this coupon
    )


@strawberry.type
class MemberCouponFields:
    """Member's coupon fields (Member inherits them)."""

    coupons: Connection[Coupon] = strawberry.field(
        resolver=_coupons,
        description="The member's coupons, newest first, as GET /v1/members/{id}/coupons lists them; the "
        "cursors are REST's.",
        directives=[sliced(sized_fields=["edges"]), unbatched(2)],
    )


class _Use(CouponUse):
    code: Annotated[str, Spelling(normalize_code)] = Field(min_length=1, max_length=64)


@strawberry.input(description="POST /v1/coupons/{code}/use: the coupon's code and the body.")
class UseCouponInput:
    code: str
    order_ref: str = strawberry.field(description="The order the coupon is used on.")
    member_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="The member using it. Required with an ecommerce key: another member's coupon is then "
        "`coupon_not_found`. A pos or admin key may leave it out.",
    )


@strawberry.type
class UseCouponPayload(MutationPayload):
    coupon: Coupon | None


async def _use(uow: UnitOfWork, caller: Principal, request: _Use) -> CouponRead:
    service.check_member_named(request.member_id, caller)
    used = await service.use_coupon(
        uow, code=request.code, order_ref=request.order_ref, member_id=request.member_id
    )
    return CouponRead.of(used)


@strawberry.type
class CouponMutations:
    loyalty_use_coupon: UseCouponPayload | None = mutation(
        input=UseCouponInput,
        payload=UseCouponPayload,
        scopes=TILLS,
        model=_Use,
        reply=CouponRead,
        work=_use,
        answer={"coupon": Coupon.of},
        description="Use a coupon on an order, once: POST /v1/coupons/{code}/use, with its rules and answers "
        "(`coupon_already_used`, `coupon_expired`, `coupon_not_yet_valid`, `coupon_not_found`).",
        subject=("coupons", "code"),
    )
