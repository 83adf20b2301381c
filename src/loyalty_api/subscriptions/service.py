"""Paid membership: subscribe, cancel, resume, change plan, take billing's payments, and what plans a member
holds now. Every change locks the member's row, then the subscription's, and first brings the subscription
up to date with the clock (subscriptions/periods.py), so the answer never lags the renewal job.

Money rules: a paid period begins only with a payment for it. Subscribing without a trial, and upgrading,
therefore need `payment_ref` (billing has taken the fee), recorded as that period's payment at the plan's
price. Renewals take the payment billing reported for the next period, at the price due then: the plan's
price of that moment, so a price change reaches a subscription at its next period. A period paid ahead
keeps the terms it was paid on: its price, and its length (an interval change reaches the period after).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from math import floor

from loyalty_api.calendar_days import add_days
from loyalty_api.db.constraints import DuplicateKey
from loyalty_api.db.pagination import Page, decode_cursor, page_of, scope_of
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.members.errors import MemberNotActive, MemberNotFound
from loyalty_api.members.models import MemberStatus
from loyalty_api.money import Money
from loyalty_api.outbox.events import MoneyPayload
from loyalty_api.plan_catalogue.catalogue import CatalogPlan
from loyalty_api.plan_catalogue.repository import PlanRepository
from loyalty_api.plan_catalogue.service import get_catalogue
from loyalty_api.program.service import get_program
from loyalty_api.subscriptions import lifecycle, periods
from loyalty_api.subscriptions.errors import (
    PaymentAmountMismatch,
    PaymentNotDue,
    PaymentRefReused,
    PeriodAlreadyPaid,
    SubscriptionExists,
    SubscriptionNotFound,
    TransitionNotAllowed,
    TrialAlreadyUsed,
)
from loyalty_api.subscriptions.events import (
    SubscriptionCanceled,
    SubscriptionCreated,
    SubscriptionPlanChanged,
    SubscriptionResumed,
    UnusedPayment,
)
from loyalty_api.subscriptions.lifecycle import Action, State
from loyalty_api.subscriptions.models import UNUSED, Subscription, SubscriptionPayment
from loyalty_api.subscriptions.repository import SubscriptionRepository


@dataclass(frozen=True, slots=True)
class PlanRef:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    id: uuid.UUID
    member_id: uuid.UUID
    plan: PlanRef
    family: str
    state: str
    period: int
    period_start: datetime
    period_end: datetime
    trial_end: datetime | None
    price: Money
    grace_until: datetime | None
    benefits_until: datetime | None
    cancel_at_period_end: bool
    pending_plan: PlanRef | None
    payment_ref: str | None
    canceled_at: datetime | None
    ended_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PaymentView:
    id: uuid.UUID
    subscription_id: uuid.UUID
    period: int
    status: str
    payment_ref: str
    amount: Money
    recorded_at: datetime
    unused_at: datetime | None


@dataclass(frozen=True, slots=True)
class PaymentResult:
    payment: PaymentView
    subscription: SubscriptionView


async def _view(uow: UnitOfWork, sub: Subscription) -> SubscriptionView:
    wanted = [sub.plan_id] + ([sub.pending_plan_id] if sub.pending_plan_id else [])
    catalogue = await get_catalogue(uow, having=wanted)
    plan = catalogue.by_id(sub.plan_id)
    pending = catalogue.by_id(sub.pending_plan_id) if sub.pending_plan_id else None
    assert plan is not None
    return SubscriptionView(
        id=sub.id,
        member_id=sub.member_id,
        plan=PlanRef(code=plan.code, name=plan.name),
        family=sub.family,
        state=sub.state,
        period=sub.period_number,
        period_start=sub.period_start,
        period_end=sub.period_end,
        trial_end=sub.trial_end,
        price=Money(amount_minor=sub.price_amount_minor, currency=sub.price_currency),
        grace_until=sub.grace_until,
        benefits_until=sub.benefits_until,
        cancel_at_period_end=sub.state == State.canceled,
        pending_plan=None if pending is None else PlanRef(code=pending.code, name=pending.name),
        payment_ref=sub.payment_ref,
        canceled_at=sub.canceled_at,
        ended_at=sub.ended_at,
        created_at=sub.created_at,
        updated_at=sub.updated_at,
    )


def _payment_view(payment: SubscriptionPayment) -> PaymentView:
    return PaymentView(
        id=payment.id,
        subscription_id=payment.subscription_id,
        period=payment.period,
        status=payment.status,
        payment_ref=payment.payment_ref,
        amount=Money(amount_minor=payment.amount_minor, currency=payment.currency),
        recorded_at=payment.recorded_at,
        unused_at=payment.unused_at,
    )


async def _plan_on_sale(uow: UnitOfWork, code: str) -> CatalogPlan:
    """The plan as stored now (not as another process's change may have left this one's cache): selling a
    plan deleted or withdrawn a moment ago elsewhere is refused, not attempted, and one whose price, length or
    benefits were changed there is sold on its new terms (the cache, its notification still on the way, held
    the old price: the subscription and billing's first fee were the old price)."""
    row = await PlanRepository(uow.session).lock_by_code(code, to="sell")
    if row is None or not row.active:
        raise InvalidField("plan", f"no plan on sale with code {code!r}")
    plan = (await get_catalogue(uow, having=[row.id], as_stored={row.id: row.updated_at})).by_id(row.id)
    if plan is None:
        raise InvalidField("plan", f"no plan on sale with code {code!r}")
    return plan


def _payment(
    sub: Subscription,
    *,
    period: int,
    status: str,
    payment_ref: str,
    amount: Money,
    months: int,
    actor: uuid.UUID | None,
    now: datetime,
) -> SubscriptionPayment:
    """A payment for `period`, which it buys at `amount` for `months` months (the plan's terms as billing was
    charged: a later change of price or interval leaves a period paid for as it was paid)."""
    return SubscriptionPayment(
        subscription_id=sub.id,
        member_id=sub.member_id,
        period=period,
        status=status,
        payment_ref=payment_ref,
        amount_minor=amount.amount_minor,
        currency=amount.currency,
        period_months=months,
        actor_key_id=actor,
        recorded_at=now,
    )


async def _insert_payment(uow: UnitOfWork, payment: SubscriptionPayment) -> None:
    try:
        await SubscriptionRepository(uow.session).insert_payment(payment)
    except DuplicateKey as exc:  # two reports racing: the constraints decide, as the checks before would
        if exc.constraint == "uq_subscription_payments__subscription_id_payment_ref":
            raise PaymentRefReused() from exc
        if exc.constraint == "uq_subscription_payments__subscription_id_period":
            raise PeriodAlreadyPaid() from exc
        raise


async def _live_in_family(uow: UnitOfWork, member_id: uuid.UUID, family: str) -> Subscription | None:
    """The member's subscription in the family that has not expired (None: none). Brought up to date first
    (and saved, out of the one-live-subscription index): one that has ended by now, the renewal job not
    there yet, is history."""
    repo = SubscriptionRepository(uow.session)
    live = await repo.get_live_in_family(member_id, family)
    if live is None:
        return None
    live = await repo.lock_subscription(live.id)
    assert live is not None, "subscriptions are never deleted"
    await periods.advance(uow, live)
    return None if live.state == State.expired else live


async def subscribe(
    uow: UnitOfWork,
    *,
    member_id: uuid.UUID,
    plan_code: str,
    payment_ref: str | None,
    trial: bool,
    actor: uuid.UUID | None = None,
) -> SubscriptionView:
    """Start a subscription: in its trial when the plan has one and `trial` is true (once per member and
    plan family), else in a first paid period whose payment `payment_ref` names."""
    repo = SubscriptionRepository(uow.session)
    status = await repo.lock_member(member_id)
    if status is None:
        raise MemberNotFound()
    try:
        if status != MemberStatus.active:
            raise MemberNotActive(f"The member is {status}")
        plan = await _plan_on_sale(uow, plan_code)
    except (MemberNotActive, InvalidField):
        # A subscribe that went through, sent again without a key (its reply lost) after the member was
        # suspended (which keeps the subscription) or the operator took the plan off sale: refused as the
        # repeat it is, as it would be had nothing changed, not as a member or a plan that cannot subscribe,
        # which reads as the member not subscribed (billing would refund the fee it took). Behind the member's
        # lock; only a refusal reads.
        known = await PlanRepository(uow.session).get_by_code(plan_code)
        if known is not None and (live := await _live_in_family(uow, member_id, known.family)):
            raise SubscriptionExists(subscription_id=str(live.id)) from None
        raise
    if live := await _live_in_family(uow, member_id, plan.family):
        raise SubscriptionExists(subscription_id=str(live.id))
    in_trial = trial and plan.trial_days > 0
    if in_trial and await repo.exists_in_family(member_id, plan.family):
        raise TrialAlreadyUsed()
    if not in_trial and payment_ref is None:
        raise InvalidField(
            "payment_ref", "is required without a trial: it records the first period's payment"
        )
    if in_trial and payment_ref is not None:
        # A fee taken now would be dropped, and billing asked for it again when the trial ends.
        raise InvalidField(
            "payment_ref",
            "pays a first period, and this subscription would start with a trial: send trial: false to start "
            "the paid period now, or leave payment_ref out",
        )

    now = uow.clock.now()
    sub = Subscription(
        member_id=member_id,
        plan_id=plan.id,
        family=plan.family,
        price_amount_minor=plan.price.amount_minor,
        price_currency=plan.price.currency,
        payment_ref=payment_ref,
        notice_sent_for=-1,
        created_at=now,
        updated_at=now,
    )
    zone = await periods.zone_of(uow)
    if in_trial:
        # Days of the programme's calendar, as periods are its months: a trial begun at noon ends at noon
        # there, and the periods counted from its end renew at noon, across a clock change too.
        trial_end = add_days(now, plan.trial_days, zone)
        sub.state = State.trialing
        sub.period_number, sub.period_start, sub.period_end = 0, now, trial_end
        sub.anchor_at, sub.anchor_period = trial_end, 1
        sub.period_months = plan.months
        sub.trial_end = trial_end
    else:
        sub.state = State.active
        sub.anchor_at, sub.anchor_period = now, 1
        sub.period_months = plan.months
        sub.period_number = 1
        sub.period_start, sub.period_end = lifecycle.period_bounds(now, 1, plan.months, 1, zone)
    try:
        await repo.insert_subscription(sub)
    except DuplicateKey as exc:
        if exc.constraint == "uq_subscriptions__member_id_family":
            raise SubscriptionExists() from exc
        raise
    # Announced before what its first period gives (the plan's coupons, partner perks): the outbox sends
    # events in the order they are written, and a receiver should hear of the subscription before its gifts.
    await periods.emit(uow, SubscriptionCreated(**periods.facts(sub, plan), trial_end=sub.trial_end))
    if not in_trial:
        assert payment_ref is not None
        first = _payment(
            sub,
            period=1,
            status="succeeded",
            payment_ref=payment_ref,
            amount=plan.price,
            months=plan.months,
            actor=actor,
            now=now,
        )
        await _insert_payment(uow, first)
        await periods.give_period_start(uow, sub, plan)
    await periods.settle(uow, sub)
    return await _view(uow, sub)


async def _locked(
    uow: UnitOfWork, subscription_id: uuid.UUID, *, member_active: bool = False
) -> Subscription:
    """The subscription under lock (member first, then subscription), brought up to date with the clock.
    With `member_active`, a member suspended or closed is refused (MemberNotActive), as at subscribe: what
    takes on more paid membership (an upgrade, a resume, a change of plan) is for active members only, while a
    cancel, or billing's payment for a period, is not."""
    sub, member_status = await _locked_with_member_status(uow, subscription_id)
    if member_active:
        _refuse_unless_active(member_status)
    return sub


async def _locked_with_member_status(uow: UnitOfWork, subscription_id: uuid.UUID) -> tuple[Subscription, str]:
    """`_locked` without the refusal: the subscription, and its member's status as read behind their lock."""
    repo = SubscriptionRepository(uow.session)
    member_id = await repo.get_member_of(subscription_id)
    if member_id is None:
        raise SubscriptionNotFound()
    # Behind the member's lock: an erasure that held it has ended the member, and what was theirs is gone.
    status = await repo.lock_member(member_id)
    sub = await repo.lock_subscription(subscription_id) if status is not None else None
    if sub is None or status is None:
        raise SubscriptionNotFound()
    await periods.advance(uow, sub)
    return sub, status


def _refuse_unless_active(member_status: str) -> None:
    if member_status != MemberStatus.active:
        raise MemberNotActive(f"The member is {member_status}")


async def get_subscription(uow: UnitOfWork, subscription_id: uuid.UUID) -> SubscriptionView:
    """The subscription as the renewal job (every minute) or the last change left it. A read changes
    nothing; benefits follow the clock regardless (`benefits_until`)."""
    sub = await SubscriptionRepository(uow.session).get_subscription(subscription_id)
    if sub is None:
        raise SubscriptionNotFound()
    return await _view(uow, sub)


async def list_member_subscriptions(
    uow: UnitOfWork, member_id: uuid.UUID, *, limit: int, cursor: str | None
) -> Page[SubscriptionView]:
    repo = SubscriptionRepository(uow.session)
    if not await repo.exists_member(member_id):
        raise MemberNotFound()
    scope = scope_of("subscriptions", member_id)
    rows = await repo.list_for_member(member_id, before_id=decode_cursor(cursor, scope), limit=limit + 1)
    page = page_of(rows, limit, lambda s: s.id, scope)
    return page.with_items([await _view(uow, s) for s in page.items])


async def cancel(uow: UnitOfWork, subscription_id: uuid.UUID, *, at_period_end: bool) -> SubscriptionView:
    """Cancel at period end (benefits last until then; `resume` undoes it), or now (benefits end now). A
    past-due subscription has no paid time left, so it ends now either way."""
    sub = await _locked(uow, subscription_id)
    await _cancel(uow, sub, at_period_end=at_period_end and State(sub.state) is not State.past_due)
    await periods.settle(uow, sub)
    return await _view(uow, sub)


async def _cancel(uow: UnitOfWork, sub: Subscription, *, at_period_end: bool) -> None:
    plan = await periods.plan_of(uow, sub)
    now = uow.clock.now()
    # A fee billing took for the next period will not be used: the event names it, for a refund, and from now
    # on it pays for nothing (`unused`), so a resume cannot renew on a fee billing may have given back.
    paid_ahead = await SubscriptionRepository(uow.session).get_paid(sub.id, sub.period_number + 1)
    if paid_ahead is not None:
        paid_ahead.status = UNUSED
        paid_ahead.unused_at = now
        # Should the cancel be undone, billing is asked for the period again.
        sub.notice_sent_for = min(sub.notice_sent_for, sub.period_number - 1)
    unused = (
        None
        if paid_ahead is None
        else UnusedPayment(
            payment_ref=paid_ahead.payment_ref,
            period=paid_ahead.period,
            amount=MoneyPayload(amount=paid_ahead.amount_minor, currency=paid_ahead.currency),
        )
    )
    if at_period_end:
        periods.move(sub, Action.cancel)  # a canceled or expired one is refused here
        sub.canceled_at = now
        # A pending downgrade stays: billing was told the next period on it, and a resume renews onto it
        # (the end of the period, should it come canceled, drops it).
        await periods.emit(
            uow,
            SubscriptionCanceled(**periods.facts(sub, plan), ends_at=sub.period_end, unused_payment=unused),
        )
        return
    if State(sub.state) is not State.canceled:
        periods.move(sub, Action.cancel)
        sub.canceled_at = now
        await periods.emit(
            uow, SubscriptionCanceled(**periods.facts(sub, plan), ends_at=now, unused_payment=unused)
        )
    await periods.expire(uow, sub, reason="canceled")


async def end_member_subscriptions(uow: UnitOfWork, member_id: uuid.UUID) -> int:
    """A closed member's subscriptions end now, as if canceled now (the events name any fee paid ahead);
    returns how many ended. The caller has changed the member's row, which holds its lock."""
    repo = SubscriptionRepository(uow.session)
    ended = 0
    for subscription_id in await repo.list_live_for_member(member_id):
        sub = await repo.lock_subscription(subscription_id)
        assert sub is not None
        await periods.advance(uow, sub)
        if State(sub.state) is not State.expired:
            await _cancel(uow, sub, at_period_end=False)
            await periods.settle(uow, sub)
            ended += 1
    return ended


async def resume(uow: UnitOfWork, subscription_id: uuid.UUID) -> SubscriptionView:
    """Undo a pending cancel: the subscription renews again at period end, onto a downgrade pending before
    the cancel if any. Billing is told the next period's price again when it changed while canceled (or when
    the cancel named a fee paid ahead for a refund); otherwise the notice it had still holds."""
    sub = await _locked(uow, subscription_id, member_active=True)
    periods.move(sub, Action.resume_trial if sub.period_number == 0 else Action.resume)
    sub.canceled_at = None
    await periods.emit(uow, SubscriptionResumed(**periods.facts(sub, await periods.plan_of(uow, sub))))
    await periods.settle(uow, sub)
    return await _view(uow, sub)


async def change_plan(
    uow: UnitOfWork,
    subscription_id: uuid.UUID,
    *,
    plan_code: str,
    payment_ref: str | None,
    actor: uuid.UUID | None = None,
) -> SubscriptionView:
    """Move to another plan of the same family. A plan dearer per month than the current period and whose
    period runs at least as long is an upgrade: it starts now with a new paid period, which `payment_ref`
    pays. Any other plan takes over at the end of the current period (a downgrade), with nothing to pay now:
    starting it now would end the time already paid for early with no credit (a year cut to a month, or a
    paid month dropped for a cheaper-per-month year), so a `payment_ref` for it is refused rather than
    dropped. Naming the current plan drops a pending change. A member suspended or closed makes no change;
    a change made before, sent again, is answered as made (the checkout's repeat of an upgrade it charged
    for must not read as refused)."""
    sub, member_status = await _locked_with_member_status(uow, subscription_id)
    repo = SubscriptionRepository(uow.session)
    current = await periods.plan_of(uow, sub)
    pending = await periods.plan_of(uow, sub, due=True) if sub.pending_plan_id else None
    # The current plan is named to drop a pending change, the pending one to repeat that change: neither need
    # be on sale any more (a plan taken off sale keeps its subscribers, and those whose change is pending).
    if plan_code == current.code:
        target = current
    elif pending is not None and plan_code == pending.code:
        target = pending
    else:
        target = await _plan_on_sale(uow, plan_code)
    if target.family != sub.family:
        raise InvalidField("plan", f"is in family {target.family!r}; this subscription is in {sub.family!r}")
    now = uow.clock.now()
    if target.id == current.id and sub.pending_plan_id is None:
        if payment_ref is not None and await _pays_current_period(repo, sub, payment_ref):
            # The upgrade this payment paid, sent again (a checkout's retry without its Idempotency-Key): it
            # is made, so the repeat answers the subscription as it is, as billing's payment sent again does;
            # a 422 read as a failed upgrade the member was charged for.
            return await _view(uow, sub)
        _refuse_unless_active(member_status)
        raise InvalidField("plan", "is the subscription's plan already")
    # Starting now replaces the rest of the current period, with no credit for it: only a plan dearer per
    # month (a real upgrade) whose period lasts at least as long starts now. By price per month alone, a
    # monthly plan was "dearer" than a yearly one and cut a prepaid year to one month; by price per period
    # alone, a year cheaper per month started at once and threw away the rest of a paid month. Per month
    # is compared crosswise, in whole minor units: target price / target months > paid price / paid months.
    upgrade = (
        target.id != current.id
        and target.price.amount_minor * sub.period_months > sub.price_amount_minor * target.months
        and target.months >= sub.period_months
    )
    if upgrade and not target.active:
        # The pending plan off sale, its price raised since to make it an upgrade: no sale starts now on it.
        raise InvalidField("plan", f"no plan on sale with code {plan_code!r}")
    in_trial = State(sub.state) is State.trialing
    # Dropping a pending downgrade moves no state. Past due, it keeps the overdue period on the member's
    # plan: refused, billing could collect only the downgrade's fee, and staying on the plan took a second
    # fee for a new period on top (an upgrade), or ending the subscription.
    if not (target.id == current.id and State(sub.state) is State.past_due):
        periods.move(sub, Action.upgrade if upgrade else Action.downgrade)  # trialing or active only
    if not upgrade and payment_ref is None and target.id == sub.pending_plan_id:
        # The downgrade pending already, named again (a checkout's retry without its Idempotency-Key): a
        # repeat sets what is set, so it announces no second plan_changed, sends billing no second notice of
        # the next period's price, and leaves updated_at. (With a payment_ref it is refused as the first was.)
        return await _view(uow, sub)
    _refuse_unless_active(member_status)
    number = sub.period_number + 1
    if await repo.get_paid(sub.id, number) is not None:
        raise PeriodAlreadyPaid(
            f"Period {number} is paid on the current plan: change plans once it has begun"
        )
    if not upgrade and payment_ref is not None:
        raise InvalidField(
            "payment_ref",
            "pays a period that starts now, and this change takes over at the end of the current period "
            "(nothing to pay now): leave payment_ref out",
        )
    # Billing hears the next period's new price (or the old one again, when a pending change is dropped).
    sub.notice_sent_for = min(sub.notice_sent_for, sub.period_number - 1)
    if target.id == current.id:
        sub.pending_plan_id = None
        effective = now
    elif upgrade:
        if payment_ref is None:
            raise InvalidField("payment_ref", "is required for an upgrade: it pays the new period")
        payment = _payment(
            sub,
            period=number,
            status="succeeded",
            payment_ref=payment_ref,
            amount=target.price,
            months=target.months,
            actor=actor,
            now=now,
        )
        await _insert_payment(uow, payment)
        await periods.enter_paid_period(uow, sub, target, number, payment, starts_at=now)
        if in_trial:
            # The paid period replaces the rest of the trial: it ends now. Left at its old end, the trial
            # showed as running beside the paid period, and churn read the member as not paying until then.
            sub.trial_end = now
        effective = now
    else:
        sub.pending_plan_id = target.id
        effective = sub.period_end
    await periods.emit(
        uow,
        SubscriptionPlanChanged(
            **periods.facts(sub, await periods.plan_of(uow, sub)),
            from_plan=current.code,
            to_plan=target.code,
            effective_at=effective,
        ),
    )
    if upgrade:
        # The new period's coupons and perks come after the change that began it is announced.
        await periods.give_period_start(uow, sub, target)
    await periods.settle(uow, sub)
    return await _view(uow, sub)


async def _pays_current_period(repo: SubscriptionRepository, sub: Subscription, payment_ref: str) -> bool:
    """Whether `payment_ref` is the fee that paid the subscription's current period."""
    paid = await repo.get_payment_by_ref(sub.id, payment_ref)
    return paid is not None and paid.status == "succeeded" and paid.period == sub.period_number


async def record_payment(
    uow: UnitOfWork,
    subscription_id: uuid.UUID,
    *,
    succeeded: bool,
    payment_ref: str,
    amount: Money,
    period: int,
    actor: uuid.UUID | None = None,
) -> PaymentResult:
    """Billing reports a fee for the next period. A success while past due renews at once; otherwise the
    payment waits for the period end, where the renewal job uses it. A failure changes nothing by itself:
    without a success by period end, the subscription falls past due. Reporting the same payment again
    answers the same."""
    sub = await _locked(uow, subscription_id)
    repo = SubscriptionRepository(uow.session)
    status = "succeeded" if succeeded else "failed"
    known = await repo.get_payment_by_ref(sub.id, payment_ref)
    if known is not None:
        # A success reported again answers as it stands now: `unused` once a cancel named it for a refund.
        reported = UNUSED if known.status == UNUSED and status == "succeeded" else status
        if (known.status, known.period, known.amount_minor, known.currency) != (
            reported,
            period,
            amount.amount_minor,
            amount.currency,
        ):
            raise PaymentRefReused()
        return PaymentResult(payment=_payment_view(known), subscription=await _view(uow, sub))
    # A second charge for a period paid already is that, whether or not the period has begun since: billing
    # refunds it, and must not read the answer as a request for the next period's fee.
    if succeeded and await repo.get_paid(sub.id, period) is not None:
        raise PeriodAlreadyPaid()
    state = State(sub.state)
    if state not in (State.trialing, State.active, State.past_due):
        raise TransitionNotAllowed(state.value, "take payments")
    due_period = sub.period_number + 1
    if period != due_period:
        raise PaymentNotDue(f"Payments are taken for period {due_period}", due_period=due_period)
    due = await periods.plan_of(uow, sub, due=True)
    if amount != due.price:
        raise PaymentAmountMismatch(
            f"Period {due_period} costs {due.price.amount_minor} {due.price.currency} minor units",
            expected={"amount": due.price.amount_minor, "currency": due.price.currency},
        )
    now = uow.clock.now()
    payment = _payment(
        sub,
        period=period,
        status=status,
        payment_ref=payment_ref,
        amount=amount,
        months=due.months,
        actor=actor,
        now=now,
    )
    await _insert_payment(uow, payment)
    if succeeded and state is State.past_due:
        await periods.renew(uow, sub, payment, Action.recover)
        await periods.advance(uow, sub)
    await periods.settle(uow, sub)
    return PaymentResult(payment=_payment_view(payment), subscription=await _view(uow, sub))


async def list_payments(
    uow: UnitOfWork, subscription_id: uuid.UUID, *, limit: int, cursor: str | None
) -> Page[PaymentView]:
    repo = SubscriptionRepository(uow.session)
    if await repo.get_subscription(subscription_id) is None:
        raise SubscriptionNotFound()
    scope = scope_of("payments", subscription_id)
    rows = await repo.list_payments(subscription_id, before_id=decode_cursor(cursor, scope), limit=limit + 1)
    page = page_of(rows, limit, lambda p: p.id, scope)
    return page.with_items([_payment_view(p) for p in page.items])


async def advance_subscription(uow: UnitOfWork, subscription_id: uuid.UUID) -> int:
    """The renewal job's work on one subscription: every step due by now (0 when it was up to date)."""
    repo = SubscriptionRepository(uow.session)
    member_id = await repo.get_member_of(subscription_id)
    if member_id is None or not await repo.try_lock_member(member_id):
        return 0  # someone is changing this member now: the next run comes back to it
    sub = await repo.lock_subscription(subscription_id)
    return 0 if sub is None else await periods.advance(uow, sub)


async def apply_grace_change(uow: UnitOfWork, plan: CatalogPlan) -> None:
    """The plan's grace changed (to `plan.grace_days`, as this transaction has written it): it is the grace
    of the subscriptions already running on it too. The end of their benefits, the end of a grace under way
    and the member's mark of their plan benefits move in this transaction, so a shorter grace holds even if
    the renewal job is late. Stored, not worked out at each read: earn and the checkout read the member's
    mark alone, and the lists of plans in force compare the stored end in SQL. A past-due subscription whose
    new grace is over already has lost its benefits now, and the renewal job expires it as of that end."""
    repo = SubscriptionRepository(uow.session)
    zone = await periods.zone_of(uow)
    # Each recomputed as `settle` does, its paid-ahead payment read with all the others, then all written at
    # once: a plan's thousands of subscribers one by one took about 1.5 ms each, and the request's time limit
    # ran out near 20,000.
    subscriptions = await repo.lock_renewing_through(plan.id)
    paid_ahead = await repo.paid_ahead_through(plan.id)
    for sub in subscriptions:
        if State(sub.state) is State.past_due and sub.plan_id == plan.id:
            sub.grace_until = lifecycle.grace_end(sub.period_end, plan.grace_days, zone)
        await periods.recompute(uow, sub, paid_ahead=paid_ahead.get(sub.id), changed=plan)
    await repo.save()
    await repo.mark_plan_benefits_through(plan.id)


def has_plan_benefits(plan_benefits_until: datetime | None, now: datetime) -> bool:
    """Whether the member row's mark says a plan may be in force (no query needed when it says no)."""
    return plan_benefits_until is not None and plan_benefits_until > now


async def members_plans_in_force(
    uow: UnitOfWork, member_ids: Sequence[uuid.UUID], *, at: datetime | None = None
) -> dict[uuid.UUID, list[CatalogPlan]]:
    """The plans whose benefits each of `member_ids` has now (trialing, active, canceled until period end, and
    past due through grace), in one statement. With `at`, those they had then instead: subscriptions begun by
    `at` whose benefits lasted beyond it, ended ones included (each on the plan it is, or ended, on now)."""
    repo = SubscriptionRepository(uow.session)
    ids = (
        await repo.list_plan_ids_in_force_of(member_ids, uow.clock.now())
        if at is None
        else await repo.list_plan_ids_held_at(member_ids, at)
    )
    catalogue = await get_catalogue(uow, having=[i for held in ids.values() for i in held])
    return {
        member_id: [plan for plan in (catalogue.by_id(i) for i in held) if plan is not None]
        for member_id, held in ids.items()
    }


async def members_subscriptions(
    uow: UnitOfWork, member_ids: Sequence[uuid.UUID], *, limit: int
) -> dict[uuid.UUID, list[SubscriptionView]]:
    """Each member's newest `limit` subscriptions, newest first, in one statement; a member without any (or
    that does not exist) is left out."""
    found = await SubscriptionRepository(uow.session).list_for_members(member_ids, limit=limit)
    wanted = [s.plan_id for subs in found.values() for s in subs]
    wanted += [s.pending_plan_id for subs in found.values() for s in subs if s.pending_plan_id]
    await get_catalogue(uow, having=wanted)  # every plan they name read at once; _view then hits the cache
    return {member_id: [await _view(uow, s) for s in subs] for member_id, subs in found.items()}


@dataclass(frozen=True, slots=True)
class PlanRevenue:
    plan: PlanRef
    paying: int
    trialing: int
    past_due: int
    monthly_recurring_revenue: Money


@dataclass(frozen=True, slots=True)
class Revenue:
    paying_members: int
    monthly_recurring_revenue: Money
    plans: list[PlanRevenue]


async def revenue(uow: UnitOfWork) -> Revenue:
    """Paying members and monthly recurring revenue: each paid-up subscription (active, or canceled with a
    paid period running) counts its period price per month (a yearly plan 1/12 of it, exactly; each figure
    is rounded down once, so the plans' may add up to a unit or two less than the total). Trials and
    past-due subscriptions bring in nothing yet."""
    repo = SubscriptionRepository(uow.session)
    currency = (await get_program(uow)).currency
    counts = await repo.list_live_counts()
    catalogue = await get_catalogue(uow, having={row[0] for row in counts})
    by_plan: dict[uuid.UUID, dict[str, int]] = {}
    mrr: dict[uuid.UUID, Fraction] = {}
    for plan_id, state, paid, price, months, count in counts:
        tally = by_plan.setdefault(plan_id, {"paying": 0, "trialing": 0, "past_due": 0})
        if paid and state in (State.active, State.canceled):
            tally["paying"] += count
            mrr[plan_id] = mrr.get(plan_id, Fraction(0)) + Fraction(price * count, months)
        elif state == State.trialing or (state == State.canceled and not paid):
            tally["trialing"] += count
        elif state == State.past_due:
            tally["past_due"] += count
    plans = []
    for plan in catalogue.plans:
        if plan.id not in by_plan:
            continue
        tally = by_plan[plan.id]
        plans.append(
            PlanRevenue(
                plan=PlanRef(code=plan.code, name=plan.name),
                paying=tally["paying"],
                trialing=tally["trialing"],
                past_due=tally["past_due"],
                monthly_recurring_revenue=Money(floor(mrr.get(plan.id, Fraction(0))), currency),
            )
        )
    return Revenue(
        paying_members=await repo.count_paying_members(),
        monthly_recurring_revenue=Money(floor(sum(mrr.values(), Fraction(0))), currency),
        plans=plans,
    )
