"""A data-subject access request: everything the service holds about one member, as one document.

It reads across every domain, through their services where one shows what is stored (subscriptions, coupons,
tier history, partner links) and their repositories otherwise, in one read-only unit of work and, on
PostgreSQL, one snapshot, so the balance it shows is the sum of the ledger it shows. Nothing is capped: long
histories (the ledger, events) are read a batch at a time.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal, TypeVar

from loyalty_api.activities.repository import MemberActivityRepository
from loyalty_api.audit import service as audit
from loyalty_api.campaigns.repository import CampaignRepository
from loyalty_api.coalition import exchanges as partner_exchanges
from loyalty_api.coupons import service as coupons
from loyalty_api.db.pagination import BATCH, MAX_LIMIT, Page, every_row
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.money import Money
from loyalty_api.orders.models import Order
from loyalty_api.orders.repository import OrderRepository
from loyalty_api.outbox.repository import OutboxRepository
from loyalty_api.partners import service as partners
from loyalty_api.partners.repository import PartnerRepository
from loyalty_api.points.holds import hold_resolved_at, hold_status
from loyalty_api.points.models import LedgerEntry, ReferralReward
from loyalty_api.points.repository import (
    HoldRepository,
    LedgerRepository,
    LotRepository,
    PointsAccountRepository,
    ReferralRepository,
)
from loyalty_api.privacy.schemas import (
    FORMAT_VERSION,
    ExportActivity,
    ExportBenefitUse,
    ExportCampaignReach,
    ExportConsents,
    ExportCoupon,
    ExportDelivery,
    ExportEngagement,
    ExportEvent,
    ExportExchange,
    ExportExternalId,
    ExportHold,
    ExportIdentifiers,
    ExportLedgerEntry,
    ExportLifecycle,
    ExportLinkConsent,
    ExportLot,
    ExportOrder,
    ExportPartnerLink,
    ExportPartners,
    ExportPayment,
    ExportPerk,
    ExportPoints,
    ExportProfile,
    ExportReferralReward,
    ExportRewardRedemption,
    ExportRfm,
    ExportSubscription,
    ExportTier,
    ExportTierChange,
    MemberExport,
)
from loyalty_api.profiles import service as profiles
from loyalty_api.program.service import get_program
from loyalty_api.rewards.repository import RedemptionRepository
from loyalty_api.segments.service import scores_of
from loyalty_api.subscriptions import service as subscriptions
from loyalty_api.tiers import membership as tier_membership
from loyalty_api.tiers.ladder import TierRef
from loyalty_api.tiers.repository import MemberTierRepository
from loyalty_api.tiers.service import get_ladder
from loyalty_api.webhooks.delivery_repository import DeliveryRepository

T = TypeVar("T")


async def _pages(fetch: Callable[[str | None], Awaitable[Page[T]]]) -> list[T]:
    """Every item of a service's cursor-paged list, in the list's order."""
    found: list[T] = []
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        found.extend(page.items)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def _money(amount_minor: int | None, currency: str | None) -> Money | None:
    return None if amount_minor is None or currency is None else Money(amount_minor, currency)


async def record_export(units: UnitsOfWork, actor: audit.Actor, member_id: uuid.UUID) -> None:
    """An export reads everything about a person, so the audit log says who did and when. In a unit of work
    of its own, committed before the document leaves: the export's own is read-only."""
    async with units.begin() as uow:
        change = audit.Change(
            action="export_member",
            subject_type="members",
            subject_id=str(member_id),
            member_id=member_id,
            method="GET",
            path=f"/v1/members/{member_id}/export",
            status=200,
        )
        await audit.record(uow, actor, change)


async def export_member(uow: UnitOfWork, member_id: uuid.UUID) -> MemberExport:
    """The member's export document; MemberNotFound for an unknown member. Reads only."""
    await uow.read_one_snapshot()  # the balance and the ledger agree
    exported_at = uow.clock.now()
    profile = await profiles.get_member(uow, member_id)
    return MemberExport(
        format_version=FORMAT_VERSION,
        exported_at=exported_at,
        member_id=member_id,
        profile=ExportProfile.model_validate(profile, from_attributes=True),
        identifiers=ExportIdentifiers(
            external_ids=[
                ExportExternalId(system=system, external_id=external_id)
                for system, external_id in profile.external_ids.items()
            ],
            referral_code=profile.referral_code,
            referred_by=profile.referred_by,
        ),
        consents=ExportConsents(
            marketing_consent=profile.marketing_consent,
            leaderboard_opt_in=profile.leaderboard_opt_in,
            partner_link_consents=await _link_consents(uow, member_id),
        ),
        points=await _points(uow, member_id),
        orders=await _orders(uow, member_id),
        tier=await _tier(uow, member_id, profile.tier),
        coupons=await _coupons(uow, member_id),
        reward_redemptions=await _reward_redemptions(uow, member_id),
        subscriptions=await _subscriptions(uow, member_id),
        partners=await _partners(uow, member_id),
        engagement=ExportEngagement(
            lifecycle=ExportLifecycle(stage=profile.lifecycle.stage, since=profile.lifecycle.since),
            rfm=await _rfm(uow, member_id),
            referral_rewards=await _referral_rewards(uow, member_id),
            activities=await _activities(uow, member_id),
            campaigns=await _campaigns(uow, member_id),
        ),
        events=await _events(uow, member_id),
    )


async def _link_consents(uow: UnitOfWork, member_id: uuid.UUID) -> list[ExportLinkConsent]:
    repo = PartnerRepository(uow.session)
    codes = await every_row(
        lambda after, limit: repo.list_member_link_codes(member_id, after_id=after, limit=limit),
        lambda pair: pair[0].id,
    )
    return [
        ExportLinkConsent(
            partner=partner,
            grants=list(code.grants),
            given_at=code.created_at,
            expires_at=code.expires_at,
            used_at=code.used_at,
        )
        for code, partner in codes
    ]


# What a referrer's referral entry records of the friend whose purchase paid it: the friend's, not theirs.
_FRIENDS_DETAILS: Final = ("friend_id", "order_ref")
# What a transfer's entries record of the other member: theirs too (the transfer_id stays).
_COUNTERPARTY_DETAILS: Final = ("to_member_id", "from_member_id")


def _own_details(entry: LedgerEntry) -> dict[str, Any]:
    if entry.type == "referral" and entry.details.get("role") == "referrer":
        return {key: value for key, value in entry.details.items() if key not in _FRIENDS_DETAILS}
    if entry.type in ("transfer_out", "transfer_in", "transfer_return"):
        return {key: value for key, value in entry.details.items() if key not in _COUNTERPARTY_DETAILS}
    return entry.details


def _entry(entry: LedgerEntry) -> ExportLedgerEntry:
    return ExportLedgerEntry(
        id=entry.id,
        type=entry.type,
        amount=entry.amount,
        balance_after=entry.balance_after,
        held_change=entry.held_change,
        held_after=entry.held_after,
        order_ref=entry.order_ref,
        hold_id=entry.hold_id,
        partner_id=entry.partner_id,
        details=_own_details(entry),
        actor_key_id=entry.actor_key_id,
        created_at=entry.created_at,
    )


async def _points(uow: UnitOfWork, member_id: uuid.UUID) -> ExportPoints:
    now = uow.clock.now()
    state = await PointsAccountRepository(uow.session).get_state(member_id)
    ledger, lots, holds = (
        LedgerRepository(uow.session),
        LotRepository(uow.session),
        HoldRepository(uow.session),
    )
    entries = await every_row(
        lambda after, limit: ledger.entries_of(member_id, after_id=after, limit=limit), lambda e: e.id
    )
    return ExportPoints(
        balance=0 if state is None else state.balance,
        held=0 if state is None else state.held,
        available=0 if state is None else state.available,
        lifetime_earned=0 if state is None else state.lifetime_earned,
        ledger=[_entry(entry) for entry in entries],
        lots=[
            ExportLot.model_validate(lot, from_attributes=True)
            for lot in await every_row(
                lambda after, limit: lots.lots_of(member_id, after_id=after, limit=limit), lambda r: r.id
            )
        ],
        holds=[
            ExportHold.model_validate(hold, from_attributes=True).model_copy(
                update={"status": hold_status(hold, now), "resolved_at": hold_resolved_at(hold, now)}
            )
            for hold in await every_row(
                lambda after, limit: holds.holds_of(member_id, after_id=after, limit=limit), lambda h: h.id
            )
        ],
    )


def _order(order: Order) -> ExportOrder:
    total = _money(order.amount_minor, order.currency)
    return ExportOrder(
        order_ref=order.order_ref,
        partner_customer_ref=order.partner_customer_ref,
        total=total,
        refunded=None if total is None else Money(order.refunded_minor, total.currency),
        points_earned=order.points_earned,
        points_redeemed=order.points_redeemed,
        points_taken_back=order.points_taken_back,
        points_given_back=order.points_given_back,
        points_shortfall=order.points_shortfall,
        purchased_at=order.purchased_at,
        earned_at=order.earned_at,
        redeemed_at=order.redeemed_at,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )


async def _orders(uow: UnitOfWork, member_id: uuid.UUID) -> list[ExportOrder]:
    repo = OrderRepository(uow.session)
    # Read in order_ref order (the key a batch goes on from), listed oldest first as every list here is.
    orders = await every_row(
        lambda after, limit: repo.orders_of(member_id, after_ref=after, limit=limit), lambda o: o.order_ref
    )
    return [_order(order) for order in sorted(orders, key=lambda o: (o.created_at, o.order_ref))]


async def _tier(uow: UnitOfWork, member_id: uuid.UUID, tier: TierRef | None) -> ExportTier:
    state = await MemberTierRepository(uow.session).get_state(member_id)
    changes = await _pages(
        lambda cursor: tier_membership.history(uow, member_id, limit=MAX_LIMIT, cursor=cursor)
    )
    return ExportTier(
        tier=tier,
        since=None if state is None else state.tier_since,
        kept_until=None
        if state is None
        else tier_membership.kept_until(
            await get_ladder(uow), state, (await get_program(uow)).zone, uow.clock.now()
        ),
        override_until=None if state is None else state.override_until,
        history=[
            ExportTierChange.model_validate(change, from_attributes=True) for change in reversed(changes)
        ],
    )


async def _coupons(uow: UnitOfWork, member_id: uuid.UUID) -> list[ExportCoupon]:
    held = await _pages(lambda cursor: coupons.list_coupons(uow, member_id, limit=MAX_LIMIT, cursor=cursor))
    return [
        ExportCoupon(
            id=shown.coupon.id,
            code=shown.coupon.code,
            name=shown.coupon.name,
            kind=shown.coupon.kind,
            properties=shown.coupon.offer.model_dump(mode="json", exclude={"kind"}),
            currency=shown.currency,
            status=shown.status,
            valid_from=shown.coupon.valid_from,
            valid_until=shown.coupon.valid_until,
            used_at=shown.coupon.used_at,
            used_order_ref=shown.coupon.used_order_ref,
            source_type=shown.coupon.source_type,
            source_id=shown.coupon.source_id,
            created_at=shown.coupon.created_at,
        )
        for shown in reversed(held)
    ]


async def _reward_redemptions(uow: UnitOfWork, member_id: uuid.UUID) -> list[ExportRewardRedemption]:
    repo = RedemptionRepository(uow.session)
    found = await every_row(
        lambda after, limit: repo.redemptions_of(member_id, after_id=after, limit=limit),
        lambda pair: pair[0].id,
    )
    return [
        ExportRewardRedemption(
            id=redemption.id,
            reward_id=redemption.reward_id,
            reward_name=name,
            points=redemption.points,
            coupon_id=redemption.coupon_id,
            ledger_entry_id=redemption.ledger_entry_id,
            created_at=redemption.created_at,
        )
        for redemption, name in found
    ]


async def _payments(uow: UnitOfWork, subscription_id: uuid.UUID) -> list[subscriptions.PaymentView]:
    return await _pages(
        lambda cursor: subscriptions.list_payments(uow, subscription_id, limit=MAX_LIMIT, cursor=cursor)
    )


async def _subscriptions(uow: UnitOfWork, member_id: uuid.UUID) -> list[ExportSubscription]:
    held = await _pages(
        lambda cursor: subscriptions.list_member_subscriptions(uow, member_id, limit=MAX_LIMIT, cursor=cursor)
    )
    exported = []
    for sub in reversed(held):
        payments = await _payments(uow, sub.id)
        exported.append(
            ExportSubscription(
                id=sub.id,
                plan=sub.plan.code,
                plan_name=sub.plan.name,
                family=sub.family,
                state=sub.state,
                period=sub.period,
                period_start=sub.period_start,
                period_end=sub.period_end,
                trial_end=sub.trial_end,
                price=sub.price,
                grace_until=sub.grace_until,
                benefits_until=sub.benefits_until,
                pending_plan=None if sub.pending_plan is None else sub.pending_plan.code,
                payment_ref=sub.payment_ref,
                canceled_at=sub.canceled_at,
                ended_at=sub.ended_at,
                created_at=sub.created_at,
                updated_at=sub.updated_at,
                payments=[
                    ExportPayment.model_validate(payment, from_attributes=True)
                    for payment in reversed(payments)
                ],
            )
        )
    return exported


async def _partners(uow: UnitOfWork, member_id: uuid.UUID) -> ExportPartners:
    links = await partners.member_links(uow, member_id)
    exchanges = await _pages(
        lambda cursor: partner_exchanges.member_exchanges(uow, member_id, limit=MAX_LIMIT, cursor=cursor)
    )
    perks = await _pages(lambda cursor: partners.member_perks(uow, member_id, limit=MAX_LIMIT, cursor=cursor))
    repo = PartnerRepository(uow.session)
    uses = await every_row(
        lambda after, limit: repo.list_member_benefit_uses(member_id, after_id=after, limit=limit),
        lambda pair: pair[0].id,
    )
    return ExportPartners(
        links=[ExportPartnerLink.model_validate(link, from_attributes=True) for link in links],
        exchanges=[
            ExportExchange.model_validate(exchange, from_attributes=True) for exchange in reversed(exchanges)
        ],
        benefit_uses=[
            ExportBenefitUse(
                id=use.id,
                partner=partner,
                benefit_id=use.benefit_id,
                benefit_name=use.benefit_name,
                use_ref=use.use_ref,
                used_at=use.created_at,
            )
            for use, partner in uses
        ],
        perks=[ExportPerk.model_validate(perk, from_attributes=True) for perk in reversed(perks)],
    )


async def _rfm(uow: UnitOfWork, member_id: uuid.UUID) -> ExportRfm | None:
    scores = await scores_of(uow, member_id)
    return None if scores is None else ExportRfm.model_validate(scores, from_attributes=True)


def _referral_side(reward: ReferralReward, member_id: uuid.UUID) -> ExportReferralReward:
    if reward.friend_id == member_id:
        # The friend's points come with the purchase itself, in the same transaction.
        return ExportReferralReward(
            role="friend",
            points=reward.friend_points,
            order_ref=reward.order_ref,
            status="credited" if reward.voided_at is None else "voided",
            created_at=reward.created_at,
            credited_at=reward.created_at,
        )
    status: Literal["credited", "pending", "skipped", "voided"] = "credited"
    if reward.voided_at is not None:
        status = "voided"
    elif reward.credited_at is None:
        status = "pending"
    elif not reward.referrer_credited:
        status = "skipped"
    # The order is the friend's purchase: theirs, not the referrer's, to see.
    return ExportReferralReward(
        role="referrer",
        points=reward.referrer_points,
        order_ref=None,
        status=status,
        created_at=reward.created_at,
        credited_at=None if reward.voided_at is not None else reward.credited_at,
    )


async def _referral_rewards(uow: UnitOfWork, member_id: uuid.UUID) -> list[ExportReferralReward]:
    repo = ReferralRepository(uow.session)
    rewards = await every_row(
        lambda after, limit: repo.rewards_of(member_id, after_friend_id=after, limit=limit),
        lambda reward: reward.friend_id,
    )
    sides = [_referral_side(reward, member_id) for reward in rewards]
    return sorted(sides, key=lambda side: side.created_at)


async def _activities(uow: UnitOfWork, member_id: uuid.UUID) -> list[ExportActivity]:
    repo = MemberActivityRepository(uow.session)
    activities = await every_row(
        lambda after, limit: repo.list_member_activities(member_id, after_id=after, limit=limit),
        lambda activity: activity.id,
    )
    return [ExportActivity.model_validate(activity, from_attributes=True) for activity in activities]


async def _campaigns(uow: UnitOfWork, member_id: uuid.UUID) -> list[ExportCampaignReach]:
    repo = CampaignRepository(uow.session)
    reached = await every_row(
        lambda after, limit: repo.list_campaigns_reaching(member_id, after=after, limit=limit),
        lambda row: row[0],
    )
    found = [ExportCampaignReach(campaign_id=i, name=n, outcome=o, reached_at=at) for i, n, o, at in reached]
    return sorted(found, key=lambda reach: reach.reached_at)


async def _events(uow: UnitOfWork, member_id: uuid.UUID) -> list[ExportEvent]:
    outbox, deliveries = OutboxRepository(uow.session), DeliveryRepository(uow.session)
    exported: list[ExportEvent] = []
    after: uuid.UUID | None = None
    while True:
        batch = await outbox.events_of(member_id, after_id=after, limit=BATCH)
        sent: defaultdict[uuid.UUID, list[ExportDelivery]] = defaultdict(list)
        for delivery in await deliveries.list_of_events([event_id for event_id, _, _ in batch]):
            sent[delivery.event_id].append(ExportDelivery.model_validate(delivery, from_attributes=True))
        exported += [
            ExportEvent(id=event_id, type=event_type, occurred_at=at, deliveries=sent[event_id])
            for event_id, event_type, at in batch
        ]
        if len(batch) < BATCH:
            return exported
        after = batch[-1][0]
