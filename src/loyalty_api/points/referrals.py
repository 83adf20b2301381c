"""Referral rewards: a referred member's first purchase of at least the programme's minimum gives them, and
the member who referred them, the programme's referral points, once.

The friend's points come with the earn, in its transaction (their account is locked already). The
referrer's come from the referral job, in a transaction of the referrer's own: one member's points change per
transaction, so no purchase ever waits on another member's lock. A referrer who is no longer active by then
gets nothing, and the reward says so.

The job credits a referrer once the programme's return window has passed since the purchase. A return within
it that leaves the purchase short of the minimum it qualified under voids the reward: the referrer gets
nothing, and the friend's points are taken back as far as their available points go (points the friend spent
already are not owed, as the reward was theirs when they spent them). After the window the reward stands,
whatever comes back; with no window (0), it always stands.
"""

from __future__ import annotations

import uuid
from typing import Literal

from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.members.repository import MemberRepository, PointsHolder
from loyalty_api.money import Money
from loyalty_api.orders.models import Order
from loyalty_api.outbox.service import emit_for_member, emit_for_members
from loyalty_api.points.accounts import credit_points, record_entry, spend_lots
from loyalty_api.points.events import ReferralRewarded, ReferralVoided
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
        min_purchase_minor=program.referral_min_purchase_minor,
        created_at=now,
        credited_at=None,
        referrer_credited=None,
        voided_at=None,
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


async def void_if_returned(
    uow: UnitOfWork, program: ProgramSettings, order: Order, state: AccountState
) -> tuple[int, AccountState]:
    """Called by a refund behind the friend's lock, the order's refunded amount counted: when the order is
    the friend's rewarded purchase, still within the programme's return window, its referrer not credited
    yet, and what is left of it no longer reaches the minimum it qualified under (or nothing is left), the
    reward is void. The friend's points taken back, and the account after."""
    if order.amount_minor is None or program.return_window_days == 0:
        return 0, state
    now = uow.clock.now()
    window_start = program.returnable_after(now)
    # The window runs from the purchase, as the referral job counts it: a receipt synced late (`occurred_at`)
    # may be past it already, and then its reward stands.
    if order.purchased_at is not None and order.purchased_at <= window_start:
        return 0, state
    # Never waits: a reward the referral job holds is past the window (the job takes no other), so it stands.
    reward = await ReferralRepository(uow.session).lock_voidable(
        order.member_id, order.order_ref, made_after=window_start
    )
    kept = order.amount_minor - order.refunded_minor
    if reward is None or (kept > 0 and kept >= reward.min_purchase_minor):
        return 0, state
    reward.voided_at = reward.credited_at = now
    reward.referrer_credited = False
    taken = min(reward.friend_points, max(state.available, 0))
    if reward.friend_points > 0:
        # Taken back as a refund takes back what the purchase earned (the analytics count it as taken back,
        # the leaderboard from the purchase's week); none of the reward was earned, so it leaves what the
        # friend earned in their lifetime whole.
        changed = await PointsAccountRepository(uow.session).change(
            order.member_id, now=now, balance=-taken, lifetime=-reward.friend_points
        )
        assert changed is not None
        state = changed
        await record_entry(
            uow,
            member_id=order.member_id,
            type="refund",
            amount=-taken,
            state=state,
            order_ref=order.order_ref,
            details={
                "referral_voided": True,
                "taken_back": taken,
                "given_back": 0,
                "not_taken_back": reward.friend_points - taken,
            },
        )
        await spend_lots(uow, order.member_id, taken, order_ref_first=order.order_ref, due_last=True)
    sides: list[tuple[uuid.UUID, Literal["friend", "referrer"]]] = [(reward.friend_id, "friend")]
    if await MemberRepository(uow.session).get_points_holder(reward.referrer_id) is not None:  # not erased
        sides.append((reward.referrer_id, "referrer"))
    await emit_for_members(
        uow,
        [
            (
                ReferralVoided(
                    member_id=member_id,
                    role=role,
                    friend_id=reward.friend_id,
                    referrer_id=reward.referrer_id,
                    order_ref=reward.order_ref,
                    points_taken_back=taken if role == "friend" else 0,
                ),
                member_id,
            )
            for member_id, role in sides
        ],
    )
    await uow.session.flush()
    return taken, state


async def credit_referrers(units: UnitsOfWork, *, batch: int = 100) -> int:
    """The referral job: each reward whose referrer is not credited yet and whose purchase (when it was made:
    a receipt synced late is older than its reward) is past the programme's return window, in a transaction
    of its own that locks the reward, then the referrer (the order every path takes). Running twice, or in
    two processes, credits each reward once, the processes sharing the rewards (a reward another holds is
    skipped). How many rewards were settled."""
    settled = 0
    while True:
        async with units.read() as uow:
            program = await get_program(uow)
            bought_by = program.returnable_after(uow.clock.now())
            pending = await ReferralRepository(uow.session).list_pending(bought_by, limit=batch)
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
    found = await PointsAccountRepository(uow.session).lock_with_member(reward.referrer_id)
    active = found is not None and found[0].status == "active"
    if active and reward.referrer_points > 0:
        await _credit(uow, await get_program(uow), reward, role="referrer")
    reward.credited_at = uow.clock.now()
    reward.referrer_credited = active
    await uow.session.flush()
    return 1
