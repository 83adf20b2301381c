"""Coupons: issue one to a member, list a member's coupons, use one once, and read them for a checkout.

Other packages call `issue_coupon` (rewards, the birthday job) and `coupons_for_checkout` (the checkout
quote); whether a coupon is usable at an instant is `coupon_state` (coupons/validity.py), for both.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.clock import format_instant
from loyalty_api.coupons.codes import generate_code, normalize_code
from loyalty_api.coupons.errors import (
    CouponAlreadyUsed,
    CouponExpired,
    CouponNotFound,
    CouponNotYetValid,
    CouponUsedOnThisOrder,
)
from loyalty_api.coupons.events import CouponIssued, CouponUsed
from loyalty_api.coupons.models import Coupon
from loyalty_api.coupons.repository import CouponRecord, CouponRepository, ListFilter
from loyalty_api.coupons.validity import CouponState, ListedStatus, coupon_state, listed_status
from loyalty_api.db.ids import new_id
from loyalty_api.db.pagination import Page, decode_cursor, page_of, scope_of
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.members.service import require_member
from loyalty_api.offers import COUPON_OFFER_ADAPTER, CartConditions
from loyalty_api.outbox.service import emit_for_member, emit_for_members
from loyalty_api.program.service import get_program

__all__ = [
    "MAY_NAME_CODE_ALONE",
    "CouponState",
    "CouponView",
    "MemberCoupon",
    "as_shown",
    "check_member_named",
    "coupon_state",
    "coupons_for_checkout",
    "find_coupon",
    "issue_coupon",
    "issue_coupons",
    "list_coupons",
    "use_coupon",
]

# A collision of two 80-bit random codes is next to impossible; a few draws make it impossible in practice.
_CODE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class CouponView:
    id: uuid.UUID
    code: str
    member_id: uuid.UUID
    name: str
    offer: CartConditions  # one of the CouponOffer kinds (offers.py); amounts in programme currency
    status: str  # active | used (whether an active one is usable now: coupon_state)
    valid_from: datetime
    valid_until: datetime
    used_at: datetime | None
    used_order_ref: str | None
    source_type: str  # reward | birthday_gift | …
    source_id: uuid.UUID | None
    created_at: datetime

    @property
    def kind(self) -> str:
        return self.offer.kind


@dataclass(frozen=True, slots=True)
class MemberCoupon:
    """A coupon as the member's list shows it at the time it was read."""

    coupon: CouponView
    status: ListedStatus
    currency: str  # the programme's: money amounts in the offer are its minor units


async def as_shown(uow: UnitOfWork, coupons: Sequence[CouponView]) -> list[MemberCoupon]:
    currency = (await get_program(uow)).currency
    now = uow.clock.now()
    return [MemberCoupon(coupon=c, status=listed_status(c, now), currency=currency) for c in coupons]


def _view(row: Coupon | CouponRecord) -> CouponView:
    return CouponView(
        id=row.id,
        code=row.code,
        member_id=row.member_id,
        name=row.name,
        offer=COUPON_OFFER_ADAPTER.validate_python({**row.properties, "kind": row.kind}),
        status=row.status,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        used_at=row.used_at,
        used_order_ref=row.used_order_ref,
        source_type=row.source_type,
        source_id=row.source_id,
        created_at=row.created_at,
    )


def _coupon_offer(offer: CartConditions) -> CartConditions:
    """The offer checked to be a coupon kind (a member-day price or a multiplier is not one)."""
    try:
        return COUPON_OFFER_ADAPTER.validate_python(offer.model_dump())
    except ValidationError as exc:
        raise ValueError(f"{offer.kind!r} is not a coupon offer") from exc


async def issue_coupon(
    uow: UnitOfWork,
    *,
    member_id: uuid.UUID,
    name: str,
    offer: CartConditions,
    valid_from: datetime,
    valid_until: datetime,
    source_type: str,
    source_id: uuid.UUID | None,
    issue_key: str | None = None,
) -> CouponView | None:
    """Give an existing member a single-use coupon with a fresh code, and emit `coupon.issued`.

    With `issue_key`, at most one coupon ever has that key: None is returned (and nothing emitted) when it
    was issued before, so a job that runs twice issues once. Raises ValueError for an offer that is not a
    coupon kind, an empty validity window, or a name, source type or key too long for its column.
    """
    offer = _coupon_offer(offer)
    if valid_until <= valid_from:
        raise ValueError("valid_until must be after valid_from")
    if not 1 <= len(name) <= 100 or not 1 <= len(source_type) <= 16:
        raise ValueError("name takes 1 to 100 characters, source_type 1 to 16")
    if issue_key is not None and not 1 <= len(issue_key) <= 120:
        raise ValueError("issue_key takes 1 to 120 characters")
    coupons = CouponRepository(uow.session)
    values = {
        "member_id": member_id,
        "source_type": source_type,
        "source_id": source_id,
        "issue_key": issue_key,
        "name": name,
        "kind": offer.kind,
        "properties": offer.model_dump(mode="json", exclude={"kind"}),
        "status": "active",
        "valid_from": valid_from,
        "valid_until": valid_until,
        "used_at": None,
        "used_order_ref": None,
        "created_at": uow.clock.now(),
    }
    for _ in range(_CODE_ATTEMPTS):
        row = await coupons.insert_coupon_if_new(values | {"code": generate_code()})
        if row is not None:
            break
        if issue_key is not None and await coupons.exists_issue_key(issue_key):
            return None
    else:
        raise RuntimeError(f"no free coupon code after {_CODE_ATTEMPTS} draws")
    coupon = _view(row)
    await emit_for_member(
        uow,
        CouponIssued(
            coupon_id=coupon.id,
            member_id=member_id,
            kind=coupon.kind,
            source_type=source_type,
            source_id=source_id,
            valid_from=valid_from,
            valid_until=valid_until,
        ),
        member_id,
    )
    return coupon


async def issue_coupons(
    uow: UnitOfWork,
    *,
    member_ids: Sequence[uuid.UUID],
    name: str,
    offer: CartConditions,
    valid_from: datetime,
    valid_until: datetime,
    source_type: str,
    source_id: uuid.UUID,
) -> int:
    """`issue_coupon` for many existing members at once, one coupon each, in two statements (the coupons,
    then their `coupon.issued` events). The issue key `{source_type}:{source_id}:{member}` makes a second
    coupon for a member from the same source fail the whole statement rather than pass: the caller keeps
    its own record of who was given one (a campaign's members) and must not ask twice. How many issued."""
    offer = _coupon_offer(offer)
    if valid_until <= valid_from:
        raise ValueError("valid_until must be after valid_from")
    if not 1 <= len(name) <= 100 or not 1 <= len(source_type) <= 16:
        raise ValueError("name takes 1 to 100 characters, source_type 1 to 16")
    now = uow.clock.now()
    properties = offer.model_dump(mode="json", exclude={"kind"})
    issued = [(new_id(), member_id) for member_id in member_ids]
    rows = [
        {
            "id": coupon_id,
            "code": generate_code(),
            "member_id": member_id,
            "source_type": source_type,
            "source_id": source_id,
            "issue_key": f"{source_type}:{source_id}:{member_id}",
            "name": name,
            "kind": offer.kind,
            "properties": properties,
            "status": "active",
            "valid_from": valid_from,
            "valid_until": valid_until,
            "used_at": None,
            "used_order_ref": None,
            "created_at": now,
        }
        for coupon_id, member_id in issued
    ]
    await CouponRepository(uow.session).insert_coupons(rows)
    await emit_for_members(
        uow,
        [
            (
                CouponIssued(
                    coupon_id=coupon_id,
                    member_id=member_id,
                    kind=offer.kind,
                    source_type=source_type,
                    source_id=source_id,
                    valid_from=valid_from,
                    valid_until=valid_until,
                ),
                member_id,
            )
            for coupon_id, member_id in issued
        ],
    )
    return len(rows)


async def coupons_for_checkout(
    uow: UnitOfWork, *, member_id: uuid.UUID, codes: Sequence[str]
) -> list[CouponView | None]:
    """For each code as named, the member's coupon with that code, or None when there is none (a code of
    another member's coupon is None too). Reads only, locks nothing; judge each with `coupon_state`."""
    normalized = [normalize_code(code) for code in codes]
    wanted = sorted({code for code in normalized if code is not None})
    rows = await CouponRepository(uow.session).list_member_coupons_by_code(member_id, wanted)
    found = {row.code: _view(row) for row in rows}
    return [None if code is None else found.get(code) for code in normalized]


async def list_coupons(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    *,
    status: ListFilter | None = None,
    limit: int,
    cursor: str | None,
) -> Page[MemberCoupon]:
    """A member's coupons, newest first; `status` picks active (not used, not past its end), used or
    expired ones."""
    await require_member(uow, member_id, must_be_active=False)
    scope = scope_of("coupons", member_id)
    rows = await CouponRepository(uow.session).list_coupons(
        member_id, status=status, now=uow.clock.now(), before_id=decode_cursor(cursor, scope), limit=limit + 1
    )
    page = page_of(rows, limit, lambda row: row.id, scope)
    return page.with_items(await as_shown(uow, [_view(row) for row in page.items]))


async def find_coupon(uow: UnitOfWork, code: str) -> MemberCoupon | None:
    """The coupon with this code, whoever holds it, or None. Reads only. A code is a bearer secret: only a
    caller that may act on any member's coupon by code alone (see the router) should be given this."""
    normalized = normalize_code(code)
    row = None if normalized is None else await CouponRepository(uow.session).get_coupon_by_code(normalized)
    if row is None:
        return None
    [shown] = await as_shown(uow, [_view(row)])
    return shown


# Keys that act for the member in front of them (a till, the back office) may use a coupon by its code
# alone; any other key must name the member, so it can only ever reach that member's coupons.
MAY_NAME_CODE_ALONE = frozenset({Scope.admin, Scope.pos})


def check_member_named(member_id: uuid.UUID | None, caller: Principal) -> None:
    """InvalidField unless the caller names the member or may use a coupon by its code alone."""
    if member_id is None and not caller.has_any(MAY_NAME_CODE_ALONE):
        raise InvalidField("member_id", "required with this API key")


async def use_coupon(
    uow: UnitOfWork, *, code: str, order_ref: str, member_id: uuid.UUID | None = None
) -> MemberCoupon:
    """Use a coupon on an order, once. Given `member_id`, another member's coupon is CouponNotFound, the
    same as a code that does not exist: a caller that names the member learns nothing of others' coupons.
    A member who is not active cannot use theirs (MemberNotActive)."""
    normalized = normalize_code(code)
    if normalized is None:
        raise CouponNotFound()
    now = uow.clock.now()
    coupons = CouponRepository(uow.session)
    # The member's row first, as an earn, a redeem or a reward takes it: a use sent while the member is being
    # suspended, closed or erased waits for that change and is judged on what it left (read unlocked, the
    # coupon of a member a suspension was ending went through, its coupon.used after member.updated). Also
    # what keeps one member's events numbered in the order their transactions commit (outbox/models.py).
    await coupons.lock_member_of(normalized, member_id=member_id)
    row = await coupons.use_coupon(normalized, member_id=member_id, order_ref=order_ref, now=now)
    if row is None:
        raise await _why_not_used(coupons, normalized, member_id, order_ref, now)
    coupon = _view(row)
    # A suspended or closed member holds no benefits: refused, the UPDATE above is rolled back with the rest.
    await require_member(uow, coupon.member_id, must_be_active=True)
    await emit_for_member(
        uow,
        CouponUsed(
            coupon_id=coupon.id,
            member_id=coupon.member_id,
            kind=coupon.kind,
            order_ref=order_ref,
        ),
        coupon.member_id,
    )
    [used] = await as_shown(uow, [coupon])
    return used


async def _why_not_used(
    coupons: CouponRepository, code: str, member_id: uuid.UUID | None, order_ref: str, now: datetime
) -> Exception:
    row = await coupons.get_coupon_by_code(code)
    if row is None or (member_id is not None and row.member_id != member_id):
        return CouponNotFound()
    state = coupon_state(row, now)
    if state == "expired":
        return CouponExpired(f"The coupon expired at {format_instant(row.valid_until)}")
    if state == "not_yet_valid":
        return CouponNotYetValid(f"The coupon is valid from {format_instant(row.valid_from)}")
    assert state == "used", state  # a usable coupon of this member would have been taken by the UPDATE
    # A till that lost the answer and tries again must learn that the discount is its order's.
    return CouponUsedOnThisOrder() if row.used_order_ref == order_ref else CouponAlreadyUsed()
