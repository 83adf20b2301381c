"""The analytics queries: each one statement that adds up rows in the database, the same on both."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import BigInteger, ColumnElement, and_, case, cast, exists, func, literal, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from loyalty_api.members.models import Member, MemberRfm, not_closed
from loyalty_api.points.models import LedgerEntry, PointsAccount
from loyalty_api.subscriptions.models import PAYMENT_SUCCEEDED, UNUSED, Subscription, SubscriptionPayment

GroupBy = Literal["channel", "store"]


@dataclass(frozen=True, slots=True)
class EntrySums:
    """The ledger entries of one type, in one period and group, added up."""

    period: int  # the index of the period in the report
    group: str | None  # the channel or store (None: the entries name none, or no grouping)
    type: str
    amount: int  # signed, as the entries hold it
    taken_back: int  # refunds: earned points taken back
    given_back: int  # refunds: redeemed points given back


def _period_of(at: InstrumentedAttribute[datetime], cuts: Sequence[datetime]) -> ColumnElement[int]:
    """The index of the period [cuts[i], cuts[i + 1]) an instant falls in (the caller keeps to the range)."""
    inner = cuts[1:-1]
    if not inner:
        return literal(0)
    return case(*[(at < cut, index) for index, cut in enumerate(inner)], else_=len(inner))


def _fee_taken(before: datetime, subscription: type[Subscription]) -> ColumnElement[bool]:
    """Billing had taken a fee for the subscription before `before`."""
    return exists().where(
        SubscriptionPayment.subscription_id == subscription.id,
        PAYMENT_SUCCEEDED,
        SubscriptionPayment.recorded_at < before,
    )


def _not_ended(at: datetime, subscription: type[Subscription]) -> ColumnElement[bool]:
    return or_(subscription.ended_at.is_(None), subscription.ended_at >= at)


def _paying_at(at: datetime, subscription: type[Subscription] = Subscription) -> ColumnElement[bool]:
    """A subscription that was paying at `at`: made before it, out of its trial by then, billing had taken a
    fee for it before it, and it had not ended by then (one canceled but in its paid period, or past due in
    its grace, still counts). A fee taken during the trial, for the first period, does not make the trial
    paying: it may still be given back unused."""
    out_of_trial = or_(subscription.trial_end.is_(None), subscription.trial_end <= at)
    return and_(
        subscription.created_at < at, out_of_trial, _not_ended(at, subscription), _fee_taken(at, subscription)
    )


def _kept_at(at: datetime, subscription: type[Subscription]) -> ColumnElement[bool]:
    """A subscription that keeps its member at `at`, the end of a churn window: paying then, or in its trial
    with the first period's fee taken before `at`. Such a trial is not paying at a window's start (see
    _paying_at), but its member has not left: a member moving to a plan with a trial, paid ahead, has not
    churned. A fee a cancel named `unused` kept its member until that cancel and never after, even once the
    subscription is resumed (renewals take only a `succeeded` fee): a cancel or a resume after a window leaves
    the window's figure as it was."""
    fee = exists().where(
        SubscriptionPayment.subscription_id == subscription.id,
        SubscriptionPayment.recorded_at < at,
        or_(
            PAYMENT_SUCCEEDED,
            and_(SubscriptionPayment.status == UNUSED, SubscriptionPayment.unused_at >= at),
        ),
    )
    in_trial_paid_ahead = and_(
        subscription.trial_end > at, subscription.created_at < at, _not_ended(at, subscription), fee
    )
    return or_(_paying_at(at, subscription), in_trial_paid_ahead)


def _counted(at: datetime) -> ColumnElement[bool]:
    """The members the figures count: enrolled before `at` and not closed (an erased member's row stays, and
    so do the figures: one closed before the erasure stays left out, by when it was closed)."""
    return and_(Member.created_at < at, not_closed())


def _group_of(group_by: GroupBy | None) -> ColumnElement[Any]:
    if group_by is None:
        return null()
    key = "channel" if group_by == "channel" else "store_id"
    found: ColumnElement[Any] = LedgerEntry.details[key].as_string()
    return found


class AnalyticsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_entry_sums(self, cuts: Sequence[datetime], group_by: GroupBy | None) -> list[EntrySums]:
        """The ledger entries made in [cuts[0], cuts[-1]), added up by period, group and type."""
        period = _period_of(LedgerEntry.created_at, cuts).label("period")
        group = _group_of(group_by).label("grp")
        # PostgreSQL refuses a constant in GROUP BY: a report of one period, or not grouped, leaves it out.
        keys = [key for key, varies in ((period, len(cuts) > 2), (group, group_by is not None)) if varies]
        refund = LedgerEntry.type == "refund"
        taken = case((refund, cast(LedgerEntry.details["taken_back"].as_string(), BigInteger)), else_=0)
        given = case((refund, cast(LedgerEntry.details["given_back"].as_string(), BigInteger)), else_=0)
        rows = await self.session.execute(
            select(
                period,
                group,
                LedgerEntry.type,
                func.sum(LedgerEntry.amount),
                func.coalesce(func.sum(taken), 0),
                func.coalesce(func.sum(given), 0),
            )
            .where(LedgerEntry.created_at >= cuts[0], LedgerEntry.created_at < cuts[-1])
            .group_by(*keys, LedgerEntry.type)
        )
        return [
            EntrySums(int(p), g, t, int(amount), int(taken_back), int(given_back))
            for p, g, t, amount, taken_back, given_back in rows.all()
        ]

    async def get_outstanding(self, at: datetime) -> int:
        """The points all members held at `at`: the entries made before it. Every account's balance is the sum
        of its entries (the ledger's invariant), so it is also what they hold now less the entries made since.
        Both sums read the entries through their index: this adds up whichever side of `at` holds fewer,
        judged by where `at` falls between the ledger's first and last entry (two probes of the index). A
        recent end, the common case, reads a few entries rather than the whole ledger, which only grows; a
        year-old one reads the year's start rather than the year."""
        first = select(func.min(LedgerEntry.created_at)).scalar_subquery()
        last = select(func.max(LedgerEntry.created_at)).scalar_subquery()
        # Two subqueries, not one select of both: SQLite reads min() or max() off an index only when alone.
        span = (await self.session.execute(select(first, last))).one()
        if span[0] is None or at <= span[0]:
            return 0
        amount = func.coalesce(func.sum(LedgerEntry.amount), 0)
        if at - span[0] < span[1] - at:
            return int(await self.session.scalar(select(amount).where(LedgerEntry.created_at < at)) or 0)
        held_now = select(func.coalesce(func.sum(PointsAccount.balance), 0)).scalar_subquery()
        added_since = select(amount).where(LedgerEntry.created_at >= at).scalar_subquery()
        return int(await self.session.scalar(select(held_now - added_since)) or 0)

    async def list_members_joined(self, cuts: Sequence[datetime]) -> dict[int, int]:
        """How many members enrolled in each period of [cuts[0], cuts[-1])."""
        period = _period_of(Member.created_at, cuts).label("period")
        query = select(period, func.count()).where(Member.created_at >= cuts[0], Member.created_at < cuts[-1])
        rows = await self.session.execute(query.group_by(period) if len(cuts) > 2 else query)
        return {int(p): int(n) for p, n in rows.all()}

    async def list_members_by_lifecycle(self, at: datetime) -> dict[str, int]:
        """Members enrolled before `at` and not closed, by the lifecycle stage they are in now."""
        rows = await self.session.execute(
            select(Member.lifecycle_stage, func.count()).where(_counted(at)).group_by(Member.lifecycle_stage)
        )
        return {stage: int(n) for stage, n in rows.all()}

    async def list_members_by_segment(self, at: datetime) -> dict[str, int]:
        """Members enrolled before `at` and not closed, by the RFM segment the job last put them in."""
        rows = await self.session.execute(
            select(MemberRfm.segment, func.count())
            .join(Member, Member.id == MemberRfm.member_id)
            .where(_counted(at))
            .group_by(MemberRfm.segment)
        )
        return {segment: int(n) for segment, n in rows.all()}

    async def list_members_by_tier(self, at: datetime) -> tuple[int, dict[uuid.UUID | None, int]]:
        """Members enrolled before `at` and not closed, and how many of them are on each tier now."""
        rows = await self.session.execute(
            select(Member.tier_id, func.count()).where(_counted(at)).group_by(Member.tier_id)
        )
        by_tier = {tier_id: int(n) for tier_id, n in rows.all()}
        return sum(by_tier.values()), by_tier

    async def count_paying_members(self, at: datetime) -> int:
        """Members with a subscription paying at `at`."""
        query = select(func.count(func.distinct(Subscription.member_id))).where(_paying_at(at))
        return int(await self.session.scalar(query) or 0)

    async def count_paying_members_now(self) -> int:
        """Members paying now as churn reads an instant (_paying_at), from the states the renewal job keeps:
        out of the trial with a period paid (period 1 or later), not ended: active, canceled in a paid period,
        or past due in grace. A member whose fee is overdue has not left (their benefits run through grace),
        so they are no churn at `to` and must be paying now too, or the figures would not add up."""
        query = select(func.count(func.distinct(Subscription.member_id))).where(
            Subscription.state.in_(("active", "canceled", "past_due")), Subscription.period_number >= 1
        )
        return int(await self.session.scalar(query) or 0)

    async def count_churned_members(self, start: datetime, end: datetime) -> int:
        """Members with a subscription paying at `start` and none that keeps them at `end` (_kept_at): one
        who still pays for another plan family, subscribed again, or is in a trial already paid for, has not
        left."""
        later = aliased(Subscription)
        kept_at_end = select(later.member_id).where(_kept_at(end, later))
        query = select(func.count(func.distinct(Subscription.member_id))).where(
            _paying_at(start), Subscription.member_id.not_in(kept_at_end)
        )
        return int(await self.session.scalar(query) or 0)
