from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.db.constraints import flush_unique
from loyalty_api.members.models import Member, not_erased
from loyalty_api.subscriptions.models import (
    PAYMENT_SUCCEEDED,
    SUBSCRIPTION_NOT_EXPIRED,
    Subscription,
    SubscriptionPayment,
)

# NO KEY UPDATE, like earn: every change to a member's subscriptions takes the member's row first, so the
# member's `plan_benefits_until` mark is always recomputed by one transaction at a time.
_LOCK_MEMBER = (
    select(Member.status)
    .where(Member.id == bindparam("member_id"), not_erased())
    .with_for_update(key_share=True)
)
_TRY_LOCK_MEMBER = (
    select(Member.id)
    .where(Member.id == bindparam("member_id"))
    .with_for_update(key_share=True, skip_locked=True)
)
_OF_MEMBER_THERE = select(Subscription).join(Member, Member.id == Subscription.member_id).where(not_erased())


def _through_plan(plan_id: uuid.UUID) -> tuple[ColumnElement[bool], ...]:
    """Subscriptions whose benefits run through the plan's grace: trialing, active or past due on the plan,
    or renewing onto it."""
    return (
        or_(Subscription.plan_id == plan_id, Subscription.pending_plan_id == plan_id),
        Subscription.state.in_(("trialing", "active", "past_due")),
    )


_PLANS_IN_FORCE_OF = (
    select(Subscription.member_id, Subscription.plan_id)
    .where(
        Subscription.member_id.in_(bindparam("member_ids", expanding=True)),
        Subscription.benefits_until > bindparam("now"),
    )
    .order_by(Subscription.id)
)
# Until when a subscription's plan benefits lasted, ended ones included: `benefits_until` while it runs; once
# expired (when `benefits_until` is cleared), the earlier of its ending and where its benefits would have run
# to: the end of grace for one that lapsed unpaid, else the period end (a cancel now ends them sooner).
_RAN_TO = case(
    (
        Subscription.state == "expired",
        case(
            (
                Subscription.ended_at < func.coalesce(Subscription.grace_until, Subscription.period_end),
                Subscription.ended_at,
            ),
            else_=func.coalesce(Subscription.grace_until, Subscription.period_end),
        ),
    ),
    else_=Subscription.benefits_until,
)
_PLANS_HELD_AT = (
    select(Subscription.member_id, Subscription.plan_id)
    .where(
        Subscription.member_id.in_(bindparam("member_ids", expanding=True)),
        Subscription.created_at <= bindparam("at"),
        bindparam("at") < _RAN_TO,
    )
    .order_by(Subscription.id)
)


class SubscriptionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_member(self, member_id: uuid.UUID) -> str | None:
        """Lock the member's row (PostgreSQL) and return their status; None if there is no such member."""
        return await self.session.scalar(_LOCK_MEMBER, {"member_id": member_id})

    async def try_lock_member(self, member_id: uuid.UUID) -> bool:
        """Lock the member's row unless another transaction holds it (PostgreSQL; SQLite's writer lock
        already makes the transaction the only one)."""
        found = await self.session.scalar(_TRY_LOCK_MEMBER, {"member_id": member_id})
        return found is not None

    async def exists_member(self, member_id: uuid.UUID) -> bool:
        found = select(Member.id).where(Member.id == member_id, not_erased())
        return await self.session.scalar(found) is not None

    async def mark_plan_benefits(self, member_id: uuid.UUID) -> None:
        """Copy the latest end of the member's plan benefits onto the member's row, where earn and the
        checkout quote read it without touching this table."""
        latest = (
            select(func.max(Subscription.benefits_until))
            .where(Subscription.member_id == member_id)
            .scalar_subquery()
        )
        await self.session.execute(
            update(Member).where(Member.id == member_id).values(plan_benefits_until=latest)
        )

    async def lock_renewing_through(self, plan_id: uuid.UUID) -> Sequence[Subscription]:
        """Lock, in ascending id order (two members are always locked so), the members with a subscription
        whose benefits run through the plan's grace: trialing, active or past due on the plan, or renewing
        onto it; then those subscriptions, read afresh (erased members' left out)."""
        # One statement, its rows locked in the order it returns them; the members named by a subquery, not
        # a list of ids, which a plan's many subscribers would take past SQLite's count of parameters.
        await self.session.execute(
            select(Member.id)
            .where(Member.id.in_(select(Subscription.member_id).where(*_through_plan(plan_id))))
            .order_by(Member.id)
            .with_for_update(key_share=True)
        )
        renewing = (
            _OF_MEMBER_THERE.where(*_through_plan(plan_id))
            .order_by(Subscription.member_id, Subscription.id)
            .with_for_update(of=Subscription)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(renewing)).all()

    async def paid_ahead_through(self, plan_id: uuid.UUID) -> dict[uuid.UUID, SubscriptionPayment]:
        """`get_paid` for the next period of each subscription `lock_renewing_through` reads, in one
        statement, by subscription."""
        paid = await self.session.scalars(
            select(SubscriptionPayment)
            .join(Subscription, Subscription.id == SubscriptionPayment.subscription_id)
            .where(
                *_through_plan(plan_id),
                SubscriptionPayment.period == Subscription.period_number + 1,
                PAYMENT_SUCCEEDED,
            )
        )
        return {payment.subscription_id: payment for payment in paid}

    async def mark_plan_benefits_through(self, plan_id: uuid.UUID) -> None:
        """`mark_plan_benefits` for every member `lock_renewing_through` locked, in one statement."""
        latest = (
            select(func.max(Subscription.benefits_until))
            .where(Subscription.member_id == Member.id)
            .scalar_subquery()
        )
        await self.session.execute(
            update(Member)
            .where(Member.id.in_(select(Subscription.member_id).where(*_through_plan(plan_id))))
            .values(plan_benefits_until=latest)
        )

    async def exists_subscription_to(self, plan_id: uuid.UUID) -> bool:
        """Whether any subscription, running or ended, is or will be on the plan."""
        query = select(
            exists().where(or_(Subscription.plan_id == plan_id, Subscription.pending_plan_id == plan_id))
        )
        return bool(await self.session.scalar(query))

    async def renotify_unpaid(self, plan_id: uuid.UUID, now: datetime) -> None:
        """Billing was told the next period's price of subscriptions renewing onto this plan; the price has
        changed, so the renewal job tells them again (those whose next period is paid keep what they paid).
        Past-due ones too: the overdue period costs the new price, and billing retrying the old one would be
        refused. Canceled ones are told once resumed (nothing is billed while canceled): they are only marked
        here, and the renewal job is not called to them now."""
        paid = (
            select(SubscriptionPayment.id)
            .where(
                SubscriptionPayment.subscription_id == Subscription.id,
                SubscriptionPayment.period == Subscription.period_number + 1,
                PAYMENT_SUCCEEDED,
            )
            .exists()
        )
        renewing_onto = or_(
            and_(Subscription.plan_id == plan_id, Subscription.pending_plan_id.is_(None)),
            Subscription.pending_plan_id == plan_id,
        )
        billed = Subscription.state.in_(("trialing", "active", "past_due"))
        await self.session.execute(
            update(Subscription)
            .where(
                renewing_onto,
                Subscription.state.in_(("trialing", "active", "past_due", "canceled")),
                Subscription.notice_sent_for >= Subscription.period_number,
                ~paid,
            )
            .values(
                notice_sent_for=Subscription.period_number - 1,
                next_action_at=case((billed, now), else_=Subscription.next_action_at),
            )
            .execution_options(synchronize_session=False)
        )

    async def insert_subscription(self, subscription: Subscription) -> None:
        self.session.add(subscription)
        await flush_unique(self.session)

    async def save(self) -> None:
        await flush_unique(self.session)

    async def get_subscription(self, subscription_id: uuid.UUID) -> Subscription | None:
        """The subscription, unless its member was erased: an erased member is not there, nor is what was
        theirs."""
        return await self.session.scalar(_OF_MEMBER_THERE.where(Subscription.id == subscription_id))

    async def lock_subscription(self, subscription_id: uuid.UUID) -> Subscription | None:
        return await self.session.scalar(
            _OF_MEMBER_THERE.where(Subscription.id == subscription_id)
            .with_for_update(of=Subscription)
            .execution_options(populate_existing=True)
        )

    async def get_member_of(self, subscription_id: uuid.UUID) -> uuid.UUID | None:
        return await self.session.scalar(
            select(Subscription.member_id)
            .join(Member, Member.id == Subscription.member_id)
            .where(Subscription.id == subscription_id, not_erased())
        )

    async def get_live_in_family(self, member_id: uuid.UUID, family: str) -> Subscription | None:
        return await self.session.scalar(
            select(Subscription).where(
                Subscription.member_id == member_id,
                Subscription.family == family,
                SUBSCRIPTION_NOT_EXPIRED,
            )
        )

    async def exists_in_family(self, member_id: uuid.UUID, family: str) -> bool:
        found = await self.session.scalar(
            select(Subscription.id)
            .where(Subscription.member_id == member_id, Subscription.family == family)
            .limit(1)
        )
        return found is not None

    async def list_for_member(
        self, member_id: uuid.UUID, *, before_id: uuid.UUID | None, limit: int
    ) -> Sequence[Subscription]:
        query = select(Subscription).where(Subscription.member_id == member_id)
        if before_id is not None:
            query = query.where(Subscription.id < before_id)
        return (await self.session.scalars(query.order_by(Subscription.id.desc()).limit(limit))).all()

    async def list_plan_ids_in_force_of(
        self, member_ids: Sequence[uuid.UUID], now: datetime
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        rows = await self.session.execute(_PLANS_IN_FORCE_OF, {"member_ids": list(member_ids), "now": now})
        found: dict[uuid.UUID, list[uuid.UUID]] = {}
        for member_id, plan_id in rows.all():
            found.setdefault(member_id, []).append(plan_id)
        return found

    async def list_plan_ids_held_at(
        self, member_ids: Sequence[uuid.UUID], at: datetime
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        """The plans each member held at `at`, a moment that may be past: subscriptions begun by then whose
        benefits ran beyond it, ended ones included."""
        rows = await self.session.execute(_PLANS_HELD_AT, {"member_ids": list(member_ids), "at": at})
        found: dict[uuid.UUID, list[uuid.UUID]] = {}
        for member_id, plan_id in rows.all():
            found.setdefault(member_id, []).append(plan_id)
        return found

    async def list_for_members(
        self, member_ids: Sequence[uuid.UUID], *, limit: int
    ) -> dict[uuid.UUID, list[Subscription]]:
        """Each member's newest `limit` subscriptions, newest first, in one statement; an erased member's are
        left out, as every read of one member's leaves them."""
        newest = (
            select(
                Subscription.id,
                func.row_number()
                .over(partition_by=Subscription.member_id, order_by=Subscription.id.desc())
                .label("place"),
            )
            .join(Member, Member.id == Subscription.member_id)
            .where(Subscription.member_id.in_(member_ids), not_erased())
            .subquery()
        )
        query = (
            select(Subscription)
            .join(newest, newest.c.id == Subscription.id)
            .where(newest.c.place <= limit)
            .order_by(Subscription.member_id, Subscription.id.desc())
        )
        found: dict[uuid.UUID, list[Subscription]] = {}
        for sub in (await self.session.scalars(query)).all():
            found.setdefault(sub.member_id, []).append(sub)
        return found

    async def list_due(
        self, now: datetime, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[tuple[datetime, uuid.UUID]]:
        """(next action at, id) of subscriptions the renewal job must look at, in that order."""
        query = select(Subscription.next_action_at, Subscription.id).where(Subscription.next_action_at <= now)
        if after is not None:
            at, after_id = after
            query = query.where(
                (Subscription.next_action_at > at)
                | and_(Subscription.next_action_at == at, Subscription.id > after_id)
            )
        rows = await self.session.execute(
            query.order_by(Subscription.next_action_at, Subscription.id).limit(limit)
        )
        return [(at, sub_id) for at, sub_id in rows.all() if at is not None]

    async def insert_payment(self, payment: SubscriptionPayment) -> None:
        self.session.add(payment)
        await flush_unique(self.session)

    async def get_payment_by_ref(
        self, subscription_id: uuid.UUID, payment_ref: str
    ) -> SubscriptionPayment | None:
        return await self.session.scalar(
            select(SubscriptionPayment).where(
                SubscriptionPayment.subscription_id == subscription_id,
                SubscriptionPayment.payment_ref == payment_ref,
            )
        )

    async def get_paid(self, subscription_id: uuid.UUID, period: int) -> SubscriptionPayment | None:
        """The succeeded payment for the period, if any."""
        return await self.session.scalar(
            select(SubscriptionPayment).where(
                SubscriptionPayment.subscription_id == subscription_id,
                SubscriptionPayment.period == period,
                PAYMENT_SUCCEEDED,
            )
        )

    async def list_payments(
        self, subscription_id: uuid.UUID, *, before_id: uuid.UUID | None, limit: int
    ) -> Sequence[SubscriptionPayment]:
        query = select(SubscriptionPayment).where(SubscriptionPayment.subscription_id == subscription_id)
        if before_id is not None:
            query = query.where(SubscriptionPayment.id < before_id)
        return (await self.session.scalars(query.order_by(SubscriptionPayment.id.desc()).limit(limit))).all()

    async def list_live_counts(self) -> Sequence[tuple[uuid.UUID, str, bool, int, int, int]]:
        """(plan id, state, paid up, price in minor units, period months, subscriptions) over live
        subscriptions; `paid up` is false in a trial (period 0)."""
        paid = (Subscription.period_number >= 1).label("paid")
        rows = await self.session.execute(
            select(
                Subscription.plan_id,
                Subscription.state,
                paid,
                Subscription.price_amount_minor,
                Subscription.period_months,
                func.count(),
            )
            .where(SUBSCRIPTION_NOT_EXPIRED)
            .group_by(
                Subscription.plan_id,
                Subscription.state,
                paid,
                Subscription.price_amount_minor,
                Subscription.period_months,
            )
        )
        return [(p, s, bool(f), int(a), int(m), int(n)) for p, s, f, a, m, n in rows.all()]

    async def list_live_for_member(self, member_id: uuid.UUID) -> Sequence[uuid.UUID]:
        query = select(Subscription.id).where(Subscription.member_id == member_id, SUBSCRIPTION_NOT_EXPIRED)
        return (await self.session.scalars(query.order_by(Subscription.id))).all()

    async def count_paying_members(self) -> int:
        """Members with at least one paid-up subscription: active, or canceled with a paid period running."""
        query = select(func.count(func.distinct(Subscription.member_id))).where(
            Subscription.state.in_(("active", "canceled")), Subscription.period_number >= 1
        )
        return int(await self.session.scalar(query) or 0)
