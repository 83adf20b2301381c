"""Referral rewards: a referred member's first purchase of at least the programme's minimum gives them, and
the member who referred them, the programme's referral points, once.

The friend's points come with the earn, in its transaction (their account is locked already). The
referrer's come from the referral job, in a transaction of the referrer's own: one member's points change per
transaction, so no purchase ever waits on another member's lock. A referrer who is no longer active by then
gets nothing, and the reward says so.
"""

from __future__ import annotations

import uuid
from typing import Literal

from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.members.repository import PointsHolder
from loyalty_api.money import Money
from loyalty_api.outbox.service import emit_for_member
from loyalty_api.points.accounts import credit_points
from loyalty_api.points.events import ReferralRewarded
from loyalty_api.points.models import ReferralReward
from loyalty_api.points.repository import AccountState, PointsAccountRepository, ReferralRepository
from loyalty_api.program.service import ProgramSettings, get_program


async def reward_first_purchase(
    uow: UnitOfWork,
    program: ProgramSettings,
    member: PointsHolder,
    *,
    order_ref: str,
    amount: Money,
    state: AccountState,
) -> AccountState:
    """Called by earn, the member and their account locked, `state` the account after the purchase's points.
    When this is the member's first qualifying purchase since they were referred, the reward is claimed
    (once: a second claim finds it taken) and the friend's points credited; the account after them."""
    if (
        member.referred_by_id is None
        or not program.rewards_referrals
        or amount.amount_minor < program.referral_min_purchase_minor
    ):
        return state
    now = uow.clock.now()
    reward = ReferralReward(
        friend_id=member.id,
        referrer_id=member.referred_by_id,
        order_ref=order_ref,
        friend_points=program.referral_friend_points,
        referrer_points=program.referral_referrer_points,
        created_at=now,
        credited_at=None,
        referrer_credited=None,
    )
    if not await ReferralRepository(uow.session).insert_if_new(reward):
        return state
    if reward.friend_points == 0:
        return state
    return await _credit(uow, program, reward, role="friend")


async def _credit(
    uow: UnitOfWork, program: ProgramSettings, reward: ReferralReward, *, role: Literal["friend", "referrer"]
) -> AccountState:
    member_id = reward.friend_id if role == "friend" else reward.referrer_id
    points = reward.friend_points if role == "friend" else reward.referrer_points
    details = {
        "role": role,
        "friend_id": str(reward.friend_id),
        "referrer_id": str(reward.referrer_id),
        "order_ref": reward.order_ref,
    }
    state, _ = await credit_points(
        uow, program, member_id=member_id, type="referral", points=points, details=details, lifetime=True
    )
    event = ReferralRewarded(
        member_id=member_id,
        role=role,
        friend_id=reward.friend_id,
        referrer_id=reward.referrer_id,
        order_ref=reward.order_ref,
        points=points,
    )
    await emit_for_member(uow, event, member_id)
    return state


async def credit_referrers(units: UnitsOfWork, *, batch: int = 100) -> int:
    """The referral job: each reward whose referrer is not credited yet, in a transaction of its own that
    locks the reward, then the referrer (the order every path takes). Running twice, or in two processes,
    credits each reward once, the processes sharing the rewards (a reward another holds is skipped). How many
    rewards were settled."""
    settled = 0
    while True:
        async with units.read() as uow:
            pending = await ReferralRepository(uow.session).list_pending(limit=batch)
        for friend_id in pending:
            async with units.begin() as uow:
                settled += await _settle(uow, friend_id)
        if len(pending) < batch:
            return settled


async def _settle(uow: UnitOfWork, friend_id: uuid.UUID) -> int:
    rewards = ReferralRepository(uow.session)
    reward = await rewards.lock_pending(friend_id)
    if reward is None:  # another run settled it, or is settling it now
        return 0
    found = await PointsAccountRepository(uow.session).lock_with_member(reward.referrer_id, uow.clock.now())
    active = found is not None and found[0].status == "active"
    if active and reward.referrer_points > 0:
        await _credit(uow, await get_program(uow), reward, role="referrer")
    reward.credited_at = uow.clock.now()
    reward.referrer_credited = active
    await uow.session.flush()
    return 1
