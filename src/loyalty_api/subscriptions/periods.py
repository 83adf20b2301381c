"""What happens to a subscription as time passes, shared by the renewal job and by every request that
touches a subscription (which first brings it up to date, so a lagging job never shows a stale state).

Each step is one transition of subscriptions/lifecycle.py, or a notice, or a month's coupons; `advance`
takes every step due by `now`, in order. The caller holds the member's and the subscription's locks.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from loyalty_api.calendar_days import add_days, add_months
from loyalty_api.coupons.service import issue_coupon
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.outbox.events import MoneyPayload
from loyalty_api.outbox.service import emit_for_member
from loyalty_api.partners.perks import grant_period_perks
from loyalty_api.plan_catalogue.catalogue import CatalogPlan
from loyalty_api.plan_catalogue.service import get_catalogue
from loyalty_api.program.service import get_program
from loyalty_api.subscriptions import lifecycle
from loyalty_api.subscriptions.events import (
    SubscriptionEvent,
    SubscriptionExpired,
    SubscriptionPastDue,
    SubscriptionRenewalDue,
    SubscriptionRenewed,
    SubscriptionTrialWillEnd,
)
from loyalty_api.subscriptions.lifecycle import Action, State
from loyalty_api.subscriptions.models import Subscription, SubscriptionPayment
from loyalty_api.subscriptions.repository import SubscriptionRepository

# A subscription left alone for years still comes up to date in one go, but never loops for ever.
_MAX_STEPS = 1000


def notice(uow: UnitOfWork) -> timedelta:
    return timedelta(hours=uow.settings.subscription_notice_hours)


async def plan_of(uow: UnitOfWork, sub: Subscription, *, due: bool = False) -> CatalogPlan:
    """The subscription's plan; with `due`, the plan its next period will be on (a pending downgrade)."""
    plan_id = sub.pending_plan_id if due and sub.pending_plan_id else sub.plan_id
    plan = (await get_catalogue(uow, having=[plan_id])).by_id(plan_id)
    assert plan is not None, "plans with subscriptions are never deleted"
    return plan


def facts(sub: Subscription, plan: CatalogPlan) -> dict[str, Any]:
    """The fields every subscription event carries."""
    return {
        "subscription_id": sub.id,
        "member_id": sub.member_id,
        "plan": plan.code,
        "state": sub.state,
        "period": sub.period_number,
        "period_end": sub.period_end,
    }


async def emit(uow: UnitOfWork, event: SubscriptionEvent) -> None:
    await emit_for_member(uow, event, event.member_id)


def move(sub: Subscription, action: Action) -> None:
    sub.state = lifecycle.after(State(sub.state), action)


async def settle(uow: UnitOfWork, sub: Subscription) -> None:
    """After any change: recompute what the state implies (benefits, the job's next look) and mark the
    member's row with the end of their plan benefits."""
    repo = SubscriptionRepository(uow.session)
    paid_ahead = await repo.get_paid(sub.id, sub.period_number + 1) if renewing(sub) else None
    await recompute(uow, sub, paid_ahead=paid_ahead)
    await repo.save()
    await repo.mark_plan_benefits(sub.member_id)


def renewing(sub: Subscription) -> bool:
    """Whether the subscription's next period may be paid already (so its benefits run through it)."""
    return State(sub.state) in (State.trialing, State.active)


async def recompute(
    uow: UnitOfWork,
    sub: Subscription,
    *,
    paid_ahead: SubscriptionPayment | None,
    changed: CatalogPlan | None = None,
) -> None:
    """What `settle` recomputes, left to be written (a change of many subscriptions writes them together).
    `paid_ahead`: the succeeded payment for the next period of a `renewing` subscription, if any. `changed`
    is a plan with new terms this transaction has written: read so, not as the catalogue (cached, or read
    before the change) has it."""

    async def terms(*, due: bool = False) -> CatalogPlan:
        plan = await plan_of(uow, sub, due=due)
        return changed if changed is not None and changed.id == plan.id else plan

    zone = await zone_of(uow)
    grace_days = (await terms()).grace_days
    sub.benefits_until = lifecycle.benefits_until(
        State(sub.state), sub.period_end, sub.grace_until, grace_days, zone
    )
    if paid_ahead is not None and renewing(sub):
        # The next period is paid: its benefits are the member's through it (and its plan's grace), whether
        # or not the renewal job has begun it yet.
        due = await terms(due=True)
        months = months_paid(paid_ahead, due)
        ends = _next_period_end(sub, months, zone)
        sub.benefits_until = lifecycle.grace_end(ends, due.grace_days, zone)
    sub.next_action_at = lifecycle.next_action_at(
        state=State(sub.state),
        period_number=sub.period_number,
        period_end=sub.period_end,
        grace_until=sub.grace_until,
        notice_sent_for=sub.notice_sent_for,
        next_coupon_at=sub.next_coupon_at,
        notice=notice(uow),
    )
    sub.updated_at = uow.clock.now()


def _anchor_of(
    sub: Subscription, months: int, number: int, starts_at: datetime | None, zone: tzinfo
) -> tuple[datetime, int]:
    """Where paid period `number`, of `months` months, counts from: `starts_at` when it starts then (an
    upgrade, a late recovery); the current period's end when the length changes (counting from the old
    anchor would misplace it), or when the anchor no longer leads to that end; else the subscription's own
    anchor."""
    if starts_at is not None:
        return starts_at, number
    if months != sub.period_months:
        return sub.period_end, number
    # A period stored by another calendar (UTC's, before months turned in the programme's time zone, or the
    # zone before a change of it) ends where the anchor, counted in `zone`, no longer leads: continuing from
    # the anchor began the next period days after the stored end (unpaid days, coupons valid only later) or
    # before it. Periods stay back to back: the next counts from the stored end.
    if lifecycle.period_bounds(sub.anchor_at, sub.anchor_period, months, number, zone)[0] != sub.period_end:
        return sub.period_end, number
    return sub.anchor_at, sub.anchor_period


def months_paid(payment: SubscriptionPayment, plan: CatalogPlan) -> int:
    """How long the period `payment` pays for runs: as long as it was when billing charged (a payment from
    before lengths were kept: `plan`'s length)."""
    return payment.period_months if payment.period_months is not None else plan.months


def _next_period_end(sub: Subscription, months: int, zone: tzinfo) -> datetime:
    """Where the next period, of `months` months, will end once it begins, following on from this one."""
    number = sub.period_number + 1
    return lifecycle.period_bounds(*_anchor_of(sub, months, number, None, zone), months, number, zone)[1]


async def zone_of(uow: UnitOfWork) -> ZoneInfo:
    """The programme's time zone, whose calendar months periods are counted in."""
    return (await get_program(uow)).zone


def month_start(sub: Subscription, month: int, zone: tzinfo) -> datetime:
    """The start of month `month` (0-based) of the current period, counted from the anchor like periods."""
    offset = (sub.period_number - sub.anchor_period) * sub.period_months + month
    return add_months(sub.anchor_at, offset, zone)


async def enter_paid_period(
    uow: UnitOfWork,
    sub: Subscription,
    plan: CatalogPlan,
    number: int,
    payment: SubscriptionPayment,
    *,
    starts_at: datetime | None = None,
) -> None:
    """Put the subscription in paid period `number` on `plan`, at the price and for the length paid for it
    (the plan may have changed since billing charged). It follows on from the current period unless
    `starts_at` says otherwise (an upgrade starts now).
    It gives nothing yet: the caller announces the period (its event's facts read the period set here), then
    calls `give_period_start`, so a receiver hears of the subscription's change before the gifts it brings
    (the outbox sends one member's events in the order they are written)."""
    months = months_paid(payment, plan)
    zone = await zone_of(uow)
    sub.anchor_at, sub.anchor_period = _anchor_of(sub, months, number, starts_at, zone)
    sub.plan_id = plan.id
    sub.pending_plan_id = None
    sub.period_number = number
    sub.period_months = months
    sub.period_start, sub.period_end = lifecycle.period_bounds(
        sub.anchor_at, sub.anchor_period, months, number, zone
    )
    sub.price_amount_minor, sub.price_currency = payment.amount_minor, payment.currency
    sub.grace_until = None
    sub.next_coupon_at = None


async def give_period_start(uow: UnitOfWork, sub: Subscription, plan: CatalogPlan) -> None:
    """What a paid period gives as it begins: its first coupons and the plan's partner perks (each once).
    Given after the event that announces the period (subscription.created, .renewed, .plan_changed)."""
    await issue_coupons(uow, sub, plan, month=0)
    await grant_period_perks(
        uow, subscription_id=sub.id, member_id=sub.member_id, period=sub.period_number, plan=plan
    )


async def issue_coupons(uow: UnitOfWork, sub: Subscription, plan: CatalogPlan, *, month: int) -> None:
    """The plan's coupons for month `month` of the current paid period: per-period ones in month 0, monthly
    ones every month. Each coupon has a key of subscription, period, month and place in the plan, so
    coming back to a month issues nothing twice. Then note when the next month's are due."""
    # A month the job reaches late (or a recovered period) gives coupons valid from now, not already spent.
    zone = await zone_of(uow)
    starts = max(month_start(sub, month, zone), uow.clock.now())
    for index, recurring in enumerate(plan.coupons):
        if recurring.every == "period" and month != 0:
            continue
        await issue_coupon(
            uow,
            member_id=sub.member_id,
            name=recurring.name,
            offer=recurring.coupon,
            valid_from=starts,
            valid_until=add_days(starts, recurring.valid_days, zone),  # to the same time there
            source_type="plan",
            source_id=plan.id,
            issue_key=f"plan:{sub.id}:{sub.period_number}:{month}:{index}",
        )
    following = month_start(sub, month + 1, zone)
    monthly = any(c.every == "month" for c in plan.coupons)
    sub.next_coupon_at = following if monthly and following < sub.period_end else None


async def renew(uow: UnitOfWork, sub: Subscription, payment: SubscriptionPayment, action: Action) -> None:
    """The paid next period begins (convert, renew or recover), on the plan it was due on."""
    due = await plan_of(uow, sub, due=True)
    move(sub, action)
    # A recovery so late that the period it pays for is over already (a pending change to a plan with
    # shorter periods than the grace it lapsed into) begins that period now: the fee buys a whole period,
    # where it would have bought a period gone by and the subscription's end.
    now = uow.clock.now()
    late = (
        action is Action.recover
        and _next_period_end(sub, months_paid(payment, due), await zone_of(uow)) <= now
    )
    await enter_paid_period(uow, sub, due, sub.period_number + 1, payment, starts_at=now if late else None)
    await emit(
        uow,
        SubscriptionRenewed(
            **facts(sub, due),
            price=MoneyPayload(amount=sub.price_amount_minor, currency=sub.price_currency),
        ),
    )
    await give_period_start(uow, sub, due)


async def expire(uow: UnitOfWork, sub: Subscription, *, reason: str, at: datetime | None = None) -> None:
    """End the subscription, at `at` when its time ran out then (the period or the grace it reached; a job
    coming late, or a request bringing it up to date, must not date the end, and so churn, by when it came),
    else now (a cancel now)."""
    move(sub, Action.expire)
    ended_at = sub.ended_at = uow.clock.now() if at is None else at
    sub.pending_plan_id = None
    sub.next_coupon_at = None
    await emit(
        uow, SubscriptionExpired(**facts(sub, await plan_of(uow, sub)), reason=reason, ended_at=ended_at)
    )


async def advance(uow: UnitOfWork, sub: Subscription) -> int:
    """Take every step due by now; returns how many were taken (0: the subscription was up to date)."""
    now = uow.clock.now()
    steps = 0
    while steps < _MAX_STEPS and await _step(uow, sub, now):
        steps += 1
    if steps:
        await settle(uow, sub)
    return steps


async def _step(uow: UnitOfWork, sub: Subscription, now: datetime) -> bool:
    state = State(sub.state)
    plan = await plan_of(uow, sub)
    if (
        state in (State.active, State.canceled)
        and sub.next_coupon_at is not None
        and sub.next_coupon_at <= now
    ):
        due_at = sub.next_coupon_at
        zone = await zone_of(uow)
        # The month the due time falls in, not the first to start at or after it: a time stored by another
        # calendar (UTC's, before months turned in the programme's time zone, or the zone before a change of
        # it) can be later than its month's start now, and that month was then skipped (the issue key keeps a
        # month from being given twice).
        month = next((m for m in range(1, sub.period_months) if month_start(sub, m + 1, zone) > due_at), None)
        if month is None:
            sub.next_coupon_at = None
        else:
            await issue_coupons(uow, sub, plan, month=month)
        return True
    if state in (State.trialing, State.active):
        if sub.notice_sent_for < sub.period_number and sub.period_end - notice(uow) <= now:
            await _send_notices(uow, sub, plan)
            return True
        if sub.period_end <= now:
            payment = await SubscriptionRepository(uow.session).get_paid(sub.id, sub.period_number + 1)
            if payment is not None:
                await renew(uow, sub, payment, Action.convert if state is State.trialing else Action.renew)
            else:
                move(sub, Action.lapse)
                sub.grace_until = lifecycle.grace_end(sub.period_end, plan.grace_days, await zone_of(uow))
                await emit(uow, SubscriptionPastDue(**facts(sub, plan), grace_until=sub.grace_until))
            return True
    if state is State.canceled and sub.period_end <= now:
        await expire(uow, sub, reason="canceled", at=sub.period_end)
        return True
    if state is State.past_due and sub.grace_until is not None and sub.grace_until <= now:
        await expire(uow, sub, reason="unpaid", at=sub.grace_until)
        return True
    if state is State.past_due and sub.notice_sent_for < sub.period_number:
        # The overdue period's price changed since billing was told it: billing hears the new one, which is
        # what a payment must now bring.
        await _send_notices(uow, sub, plan)
        return True
    return False


async def _send_notices(uow: UnitOfWork, sub: Subscription, plan: CatalogPlan) -> None:
    """Tell billing the trial is ending and what the next period costs, unless it is paid already."""
    sub.notice_sent_for = sub.period_number
    now = uow.clock.now()
    # A run that comes after the trial has ended (the worker was down) does not say it will end: the renewal
    # or past_due this run sends next says it has. What to collect is still told: billing collects it now.
    if State(sub.state) is State.trialing and sub.trial_notice_sent_at is None and sub.period_end > now:
        sub.trial_notice_sent_at = now
        await emit(uow, SubscriptionTrialWillEnd(**facts(sub, plan)))
    if await SubscriptionRepository(uow.session).get_paid(sub.id, sub.period_number + 1) is not None:
        return
    due = await plan_of(uow, sub, due=True)
    # Told after the period end (the worker was down, or the overdue period's price changed): the fee is
    # wanted by the end of the grace the period lapses (or has lapsed) into, not by a time gone by.
    overdue = sub.period_end <= now
    if not overdue:
        collect_by = sub.period_end
    elif sub.grace_until is not None:
        collect_by = sub.grace_until
    else:
        collect_by = lifecycle.grace_end(sub.period_end, plan.grace_days, await zone_of(uow))
    await emit(
        uow,
        SubscriptionRenewalDue(
            **facts(sub, plan),
            due_period=sub.period_number + 1,
            due_plan=due.code,
            amount=MoneyPayload(amount=due.price.amount_minor, currency=due.price.currency),
            overdue=overdue,
            collect_by=collect_by,
        ),
    )
