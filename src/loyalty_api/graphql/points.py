"""Points over GraphQL, reads: a member's points account and ledger, and holds; the same answers as REST."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated, Any, get_args

import strawberry
from pydantic import TypeAdapter, ValidationError
from strawberry.scalars import JSON
from strawberry.types import Info

from loyalty_api.errors import InvalidField
from loyalty_api.graphql.connections import Connection, cursor_of, page_size, paged
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.cost import assumed, sliced, unbatched
from loyalty_api.graphql.enums import values_enum
from loyalty_api.graphql.errors import as_graphql_error, require
from loyalty_api.graphql.ids import parse_id
from loyalty_api.graphql.money import Long, Money
from loyalty_api.graphql.scopes import TILLS
from loyalty_api.http.problems import plain_message
from loyalty_api.http.schemas import Instant
from loyalty_api.members.errors import MemberNotFound
from loyalty_api.points import holds, service
from loyalty_api.points.errors import HoldNotFound
from loyalty_api.points.ledger import EntryType
from loyalty_api.points.schemas import (
    HoldRead,
    LedgerEntryRead,
    PointsRead,
)

# --- A hold: GET /v1/holds/{id} (the mutations answer it too)

# The statuses REST's `HoldRead.status` allows: the points domain names no list of its own.
HoldStatus = values_enum(
    "HoldStatus", get_args(HoldRead.model_fields["status"].annotation), "Where a hold stands."
)


@strawberry.type(description="Points reserved for an order being placed, as GET /v1/holds/{id} answers.")
class PointsHold:
    id: strawberry.ID
    member_id: strawberry.ID
    order_ref: str
    points: Long
    captured_points: Long
    status: str = strawberry.field(graphql_type=HoldStatus)
    created_at: datetime.datetime
    expires_at: datetime.datetime
    resolved_at: datetime.datetime | None
    balance: Long | None = strawberry.field(
        description="The member's balance after the call that answered this (null on a plain read)."
    )
    available: Long | None

    @classmethod
    def of(cls, read: HoldRead) -> PointsHold:
        return cls(
            id=strawberry.ID(str(read.id)),
            member_id=strawberry.ID(str(read.member_id)),
            order_ref=read.order_ref,
            points=Long(read.points),
            captured_points=Long(read.captured_points),
            status=read.status,
            created_at=read.created_at,
            expires_at=read.expires_at,
            resolved_at=read.resolved_at,
            balance=None if read.balance is None else Long(read.balance),
            available=None if read.available is None else Long(read.available),
        )


# --- Reads: GET /v1/members/{id}/points, /v1/members/{id}/ledger, /v1/holds/{id}


@strawberry.type
class PointsExpiring:
    month: str = strawberry.field(description="YYYY-MM in the programme's time zone.")
    points: Long
    expires_at: datetime.datetime = strawberry.field(description="When the first of these points expire.")


@strawberry.type(description="A member's points now, as GET /v1/members/{id}/points answers.")
class PointsAccount:
    balance: Long
    held: Long = strawberry.field(description="Points reserved by active holds.")
    available: Long = strawberry.field(description="Balance less held.")
    lifetime_earned: Long
    available_value: Money = strawberry.field(description="What the available points are worth.")
    expiring: list[PointsExpiring] = strawberry.field(
        directives=[assumed(24)], description="What expires in which month, soonest first."
    )

    @classmethod
    def of(cls, read: PointsRead) -> PointsAccount:
        return cls(
            balance=Long(read.balance),
            held=Long(read.held),
            available=Long(read.available),
            lifetime_earned=Long(read.lifetime_earned),
            available_value=Money.of_read(read.available_value),
            expiring=[
                PointsExpiring(month=e.month, points=Long(e.points), expires_at=e.expires_at)
                for e in read.expiring
            ],
        )


LedgerEntryType = values_enum("LedgerEntryType", get_args(EntryType), "What changed a member's points.")


@strawberry.type(description="One change to a member's points, as GET /v1/members/{id}/ledger lists it.")
class LedgerEntry:
    id: strawberry.ID
    type: str = strawberry.field(graphql_type=LedgerEntryType)
    amount: Long = strawberry.field(description="The signed change to the balance.")
    balance_after: Long
    held_change: Long = strawberry.field(description="The signed change to the points on hold.")
    held_after: Long
    order_ref: str | None
    hold_id: strawberry.ID | None
    details: dict[str, Any] = strawberry.field(
        graphql_type=JSON,
        description="By type: an earn's rule breakdown, a refund's shares, an adjustment's reason.",
    )
    actor_key_id: strawberry.ID | None = strawberry.field(description="The API key that made the change.")
    created_at: datetime.datetime

    @classmethod
    def of(cls, read: LedgerEntryRead) -> LedgerEntry:
        return cls(
            id=strawberry.ID(str(read.id)),
            type=read.type,
            amount=Long(read.amount),
            balance_after=Long(read.balance_after),
            held_change=Long(read.held_change),
            held_after=Long(read.held_after),
            order_ref=read.order_ref,
            hold_id=None if read.hold_id is None else strawberry.ID(str(read.hold_id)),
            details=read.details,
            actor_key_id=None if read.actor_key_id is None else strawberry.ID(str(read.actor_key_id)),
            created_at=read.created_at,
        )


_INSTANT: TypeAdapter[datetime.datetime] = TypeAdapter(Instant)


def _instant(value: datetime.datetime | None, field: str) -> datetime.datetime | None:
    """`since` / `until` checked as REST checks them (with a zone, within range)."""
    if value is None:
        return None
    try:
        return _INSTANT.validate_python(value)
    except ValidationError as exc:
        message = plain_message(exc.errors(include_url=False)[0]["msg"])
        raise as_graphql_error(InvalidField(field, message)) from None


async def _points_account(root: Any, info: Info[GraphQLContext, None]) -> PointsAccount:
    require(info.context, *TILLS)
    summary = await info.context.loaders.points_accounts.load(uuid.UUID(str(root.id)))
    if summary is None:  # gone since it was resolved, or erased (a replayed payload names them): not found
        raise as_graphql_error(MemberNotFound())
    return PointsAccount.of(PointsRead.model_validate(summary))


async def _ledger(
    root: Any,
    info: Info[GraphQLContext, None],
    first: int = 20,
    after: str | None = None,
    types: Annotated[
        list[EntryType] | None, strawberry.argument(graphql_type=list[LedgerEntryType] | None)
    ] = None,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
) -> Connection[LedgerEntry]:
    require(info.context, *TILLS)
    limit = page_size(first)
    since, until = _instant(since, "since"), _instant(until, "until")
    async with info.context.snapshot.read() as uow:
        with paged():
            page = await service.ledger(
                uow,
                uuid.UUID(str(root.id)),
                types=types or (),
                since=since,
                until=until,
                limit=limit,
                cursor=cursor_of(after),
            )
    # Each edge's cursor is REST's cursor after that entry: either API pages on from it.
    return Connection.of(
        [LedgerEntryRead.model_validate(e) for e in page.items],
        page.next_cursor,
        node=LedgerEntry.of,
        cursor=lambda entry: page.cursor_after(entry.id),
    )


@strawberry.type
class MemberPointsFields:
    """Member's points fields (Member inherits them)."""

    points_account: PointsAccount = strawberry.field(
        resolver=_points_account,
        description="Balance, held and available points, and what expires when: GET /v1/members/{id}/points.",
    )
    ledger: Connection[LedgerEntry] = strawberry.field(
        resolver=_ledger,
        description="Every change to the member's points, newest first: GET /v1/members/{id}/ledger. "
        "`after` takes an edge's cursor (REST's cursors too); `since` is inclusive, `until` exclusive.",
        directives=[sliced(sized_fields=["edges"]), unbatched(2)],
    )


async def _hold_by_id(info: Info[GraphQLContext, None], id: strawberry.ID) -> PointsHold | None:
    require(info.context, *TILLS)
    hold_id = parse_id(str(id), "id")
    async with info.context.snapshot.read() as uow:
        try:
            found = await holds.get_hold(uow, hold_id)
        except HoldNotFound:
            return None
    return PointsHold.of(HoldRead.model_validate(found))


@strawberry.type
class PointsQueries:
    loyalty_hold: PointsHold | None = strawberry.field(
        resolver=_hold_by_id,
        description="A hold as it stands (GET /v1/holds/{id}); null when none. `balance` and `available` "
        "are null here: the mutations that change a hold answer them.",
    )
