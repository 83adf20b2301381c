"""The rewards catalogue, and buying a reward with points.

Redeeming is one unit of work in a fixed order: lock the member and their account, then the reward (its terms
are read behind that lock), take the points (the conditional UPDATE of the account row), then check the
member's limit (safe behind the member's lock), then take one off the stock (one conditional UPDATE of the
reward row), then issue the coupon and write the ledger entry. Any refusal raises, and the caller's unit of
work rolls all of it back. Locks are always taken member first, reward second, so concurrent redemptions
cannot deadlock.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.calendar_days import add_days
from loyalty_api.coupons import service as coupons
from loyalty_api.coupons.service import MemberCoupon
from loyalty_api.db.changes import column_values
from loyalty_api.db.pagination import Page, decode_cursor, page_of, scope_of
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import check_window
from loyalty_api.offers import COUPON_OFFER_ADAPTER, CartConditions
from loyalty_api.outbox.service import emit_for_member, emit_for_programme
from loyalty_api.points.accounts import debit_available, lock_earner, record_entry, spend_lots
from loyalty_api.program.service import get_program
from loyalty_api.rewards.errors import (
    RewardLimitReached,
    RewardNotAvailable,
    RewardNotFound,
    RewardOutOfStock,
)
from loyalty_api.rewards.events import RewardChanged, RewardRedeemed
from loyalty_api.rewards.models import Reward, RewardRedemption
from loyalty_api.rewards.repository import RedemptionRepository, RewardRepository

REWARDS = scope_of("rewards")  # the catalogue's cursors carry it


def sees_whole_catalogue(caller: Principal) -> bool:
    """An admin sees the whole catalogue; other keys only the rewards offered now."""
    return Scope.admin in caller.scopes


@dataclass(frozen=True, slots=True)
class RewardDefinition:
    name: str
    description: str | None
    cost_points: int
    per_member_limit: int | None  # None: no limit
    coupon: CartConditions  # a CouponOffer kind; money in the programme's currency, minor units
    coupon_valid_days: int
    active: bool
    valid_from: datetime | None
    valid_until: datetime | None


@dataclass(frozen=True, slots=True)
class RewardView(RewardDefinition):
    id: uuid.UUID
    stock_left: int | None  # None: unlimited
    currency: str
    available: bool  # offered now and in stock
    created_at: datetime
    updated_at: datetime


class _Keep(enum.Enum):
    STOCK = "keep"


KEEP_STOCK = _Keep.STOCK


def _offered(row: Reward, now: datetime) -> bool:
    return (
        row.active
        and (row.valid_from is None or row.valid_from <= now)
        and (row.valid_until is None or now < row.valid_until)
    )


def _view(row: Reward, *, currency: str, now: datetime) -> RewardView:
    return RewardView(
        id=row.id,
        name=row.name,
        description=row.description,
        cost_points=row.cost_points,
        per_member_limit=row.per_member_limit,
        coupon=_offer(row),
        coupon_valid_days=row.coupon_valid_days,
        active=row.active,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        stock_left=row.stock_left,
        currency=currency,
        available=_offered(row, now) and row.stock_left != 0,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _views(uow: UnitOfWork, rows: list[Reward]) -> list[RewardView]:
    currency = (await get_program(uow)).currency
    now = uow.clock.now()
    return [_view(row, currency=currency, now=now) for row in rows]


def _offer(row: Reward) -> CartConditions:
    return COUPON_OFFER_ADAPTER.validate_python({**row.coupon_properties, "kind": row.coupon_kind})


def _check(definition: RewardDefinition) -> None:
    check_window(definition.valid_from, definition.valid_until)


def _apply(row: Reward, definition: RewardDefinition) -> None:
    row.name = definition.name
    row.description = definition.description
    row.cost_points = definition.cost_points
    row.per_member_limit = definition.per_member_limit
    row.coupon_kind = definition.coupon.kind
    row.coupon_properties = definition.coupon.model_dump(mode="json", exclude={"kind"})
    row.coupon_valid_days = definition.coupon_valid_days
    row.active = definition.active
    row.valid_from = definition.valid_from
    row.valid_until = definition.valid_until


async def _changed(uow: UnitOfWork, row: Reward, change: Literal["created", "replaced"]) -> None:
    await emit_for_programme(
        uow,
        RewardChanged(
            reward_id=row.id, name=row.name, cost_points=row.cost_points, active=row.active, change=change
        ),
        str(row.id),
    )


async def create_reward(uow: UnitOfWork, definition: RewardDefinition, *, stock: int | None) -> RewardView:
    """A new catalogue item; `stock` None is unlimited."""
    _check(definition)
    now = uow.clock.now()
    row = Reward(stock_left=stock, created_at=now, updated_at=now)
    _apply(row, definition)
    await RewardRepository(uow.session).insert_reward(row)
    await _changed(uow, row, "created")
    [view] = await _views(uow, [row])
    return view


async def replace_reward(
    uow: UnitOfWork,
    reward_id: uuid.UUID,
    definition: RewardDefinition,
    *,
    stock: int | _Keep | None = KEEP_STOCK,
) -> RewardView:
    """Replace the definition. The stock left is a live count: it changes only when `stock` is given
    (None: unlimited). A reward is never deleted (redemptions point at it): deactivate it instead."""
    _check(definition)
    rewards = RewardRepository(uow.session)
    # Locked, as a benefit's or an earning rule's replace is: read without it, replaces at once each compared
    # with the reward as it was before any of them, each applied and each announced reward.changed, though
    # the second of two identical ones changed nothing.
    row = await rewards.lock_reward(reward_id)
    if row is None:
        raise RewardNotFound()
    await uow.subject_locked()
    before = column_values(row)
    _apply(row, definition)
    if not isinstance(stock, _Keep):
        row.stock_left = stock
    if column_values(row) == before:  # sent again as it is: no change to announce (db/changes.py)
        [view] = await _views(uow, [row])
        return view
    row.updated_at = uow.clock.now()
    await rewards.save_reward()
    await _changed(uow, row, "replaced")
    [view] = await _views(uow, [row])
    return view


async def get_reward(uow: UnitOfWork, reward_id: uuid.UUID, *, only_offered: bool) -> RewardView:
    """With `only_offered`, a reward that is inactive or outside its window is RewardNotFound."""
    row = await RewardRepository(uow.session).get_reward(reward_id)
    if row is None or (only_offered and not _offered(row, uow.clock.now())):
        raise RewardNotFound()
    [view] = await _views(uow, [row])
    return view


async def list_rewards(
    uow: UnitOfWork, *, only_offered: bool, limit: int, cursor: str | None
) -> Page[RewardView]:
    """The catalogue in the order it was created; with `only_offered`, only the rewards offered now."""
    rows = await RewardRepository(uow.session).list_rewards(
        on_offer_at=uow.clock.now() if only_offered else None,
        after_id=decode_cursor(cursor, REWARDS),
        limit=limit + 1,
    )
    page = page_of(rows, limit, lambda row: row.id, REWARDS)
    return page.with_items(await _views(uow, list(page.items)))


@dataclass(frozen=True, slots=True)
class RedemptionResult:
    id: uuid.UUID
    reward_id: uuid.UUID
    member_id: uuid.UUID
    points_spent: int
    balance: int
    available: int
    coupon: MemberCoupon
    created_at: datetime


async def redeem_reward(
    uow: UnitOfWork, *, member_id: uuid.UUID, reward_id: uuid.UUID, actor: uuid.UUID | None = None
) -> RedemptionResult:
    # The member and their account locked first (as an earn or a redeem does): no reward for a member a
    # close or an erasure is ending.
    await lock_earner(uow, member_id)
    rewards = RewardRepository(uow.session)
    # The reward locked next (member first, reward second, as the stock's UPDATE always took them), and read
    # behind that lock: read without it, an operator's change committed before this took its stock left the
    # old cost and coupon in hand, so a sold-out reward restocked at a new price was bought at the old one.
    # Redemptions of one reward queued on its row from the stock's UPDATE to their commit already.
    reward = await rewards.lock_reward(reward_id)
    now = uow.clock.now()
    if reward is None:
        raise RewardNotFound()
    if not _offered(reward, now):
        raise RewardNotAvailable()
    cost = reward.cost_points

    # (a) The points, first: this locks the member's account row until commit.
    state = await debit_available(uow, member_id, cost)
    await spend_lots(uow, member_id, cost)
    # (b) The member's limit: their earlier redemptions are all committed or queued behind our lock.
    limit = reward.per_member_limit
    if limit is not None:
        redeemed = await RedemptionRepository(uow.session).count_member_redemptions(member_id, reward_id)
        if redeemed >= limit:
            raise RewardLimitReached(f"At most {limit} per member", limit=limit)
    # (c) The stock: one conditional UPDATE, which also sees a reward deactivated in the meantime.
    taken, stock_left = await rewards.take_stock(reward_id, now)
    if not taken:
        raise await _why_not_taken(rewards, reward_id, now)

    # (d) The coupon, the ledger entry, the redemption.
    coupon = await coupons.issue_coupon(
        uow,
        member_id=member_id,
        name=reward.name,
        offer=_offer(reward),
        valid_from=now,
        # Days of the programme's calendar: valid to the same time there that many days on.
        valid_until=add_days(now, reward.coupon_valid_days, (await get_program(uow)).zone),
        source_type="reward",
        source_id=reward_id,
    )
    assert coupon is not None, "issued without an issue key"
    entry_id = await record_entry(
        uow,
        member_id=member_id,
        type="reward",
        amount=-cost,
        state=state,
        details={
            "reward_id": str(reward_id),
            "reward_name": reward.name,
            "coupon_id": str(coupon.id),  # not its code: ledgers are read by tills, codes are bearer secrets
        },
        actor=actor,
    )
    redemption = RewardRedemption(
        reward_id=reward_id,
        member_id=member_id,
        coupon_id=coupon.id,
        ledger_entry_id=entry_id,
        points=cost,
        created_at=now,
    )
    await RedemptionRepository(uow.session).insert_redemption(redemption)
    await emit_for_member(
        uow,
        RewardRedeemed(
            redemption_id=redemption.id,
            reward_id=reward_id,
            member_id=member_id,
            coupon_id=coupon.id,
            points=cost,
            balance=state.balance,
            stock_left=stock_left,
        ),
        member_id,
    )
    [shown] = await coupons.as_shown(uow, [coupon])
    return RedemptionResult(
        id=redemption.id,
        reward_id=reward_id,
        member_id=member_id,
        points_spent=cost,
        balance=state.balance,
        available=state.available,
        coupon=shown,
        created_at=now,
    )


async def _why_not_taken(rewards: RewardRepository, reward_id: uuid.UUID, now: datetime) -> Exception:
    row = await rewards.get_reward(reward_id)
    if row is None:
        return RewardNotFound()
    if not _offered(row, now):
        return RewardNotAvailable()
    return RewardOutOfStock()
