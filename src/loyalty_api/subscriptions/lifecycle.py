"""A subscription's states and the only transitions between them, in one table. Pure: no I/O, no clock.

| from      | action        | to        | when                                                      |
|-----------|---------------|-----------|-----------------------------------------------------------|
| trialing  | convert       | active    | the trial ends and the first period is paid               |
| trialing  | lapse         | past_due  | the trial ends unpaid: grace begins                       |
| trialing  | cancel        | canceled  | cancel (the trial's benefits last to its end)             |
| trialing  | upgrade       | active    | dearer per month, as long or longer: paid, starts now     |
| trialing  | downgrade     | trialing  | any other plan, from the end of the trial                 |
| active    | renew         | active    | the period ends and the next one is paid                  |
| active    | lapse         | past_due  | the period ends unpaid: grace begins                      |
| active    | cancel        | canceled  | cancel (at period end, or now: then expire at once)       |
| active    | upgrade       | active    | dearer per month, as long or longer: starts now           |
| active    | downgrade     | active    | any other plan, from the next period                      |
| past_due  | recover       | active    | the overdue period is paid during grace                   |
| past_due  | cancel        | canceled  | cancel (nothing paid is left: it expires at once)         |
| past_due  | expire        | expired   | grace runs out                                            |
| canceled  | resume        | active    | the cancel is undone before the paid period ends          |
| canceled  | resume_trial  | trialing  | the cancel is undone before the trial ends                |
| canceled  | expire        | expired   | the period ends, or cancel now                            |

Anything else is refused with the current state. `expired` is final.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from enum import StrEnum

from loyalty_api.calendar_days import add_days, add_months
from loyalty_api.subscriptions.errors import TransitionNotAllowed


class State(StrEnum):
    trialing = "trialing"
    active = "active"
    past_due = "past_due"
    canceled = "canceled"
    expired = "expired"


class Action(StrEnum):
    convert = "convert"
    renew = "renew"
    lapse = "lapse"
    recover = "recover"
    cancel = "cancel"
    resume = "resume"
    resume_trial = "resume_trial"
    upgrade = "upgrade"
    downgrade = "downgrade"
    expire = "expire"


TRANSITIONS: dict[tuple[State, Action], State] = {
    (State.trialing, Action.convert): State.active,
    (State.trialing, Action.lapse): State.past_due,
    (State.trialing, Action.cancel): State.canceled,
    (State.trialing, Action.upgrade): State.active,
    (State.trialing, Action.downgrade): State.trialing,
    (State.active, Action.renew): State.active,
    (State.active, Action.lapse): State.past_due,
    (State.active, Action.cancel): State.canceled,
    (State.active, Action.upgrade): State.active,
    (State.active, Action.downgrade): State.active,
    (State.past_due, Action.recover): State.active,
    (State.past_due, Action.cancel): State.canceled,
    (State.past_due, Action.expire): State.expired,
    (State.canceled, Action.resume): State.active,
    (State.canceled, Action.resume_trial): State.trialing,
    (State.canceled, Action.expire): State.expired,
}


def after(state: State, action: Action) -> State:
    """The state `action` leads to from `state`; TransitionNotAllowed (409, naming the state) if none."""
    found = TRANSITIONS.get((state, action))
    if found is None:
        raise TransitionNotAllowed(state.value, action.value)
    return found


def period_bounds(
    anchor_at: datetime, anchor_period: int, months: int, number: int, zone: tzinfo
) -> tuple[datetime, datetime]:
    """[start, end) of paid period `number`, counted in whole months of the programme's time zone `zone` from
    the anchor, so that a period anchored on the 31st ends on the last day of shorter months and returns to
    the 31st after them."""
    offset = number - anchor_period
    return (
        add_months(anchor_at, months * offset, zone),
        add_months(anchor_at, months * (offset + 1), zone),
    )


def grace_end(period_end: datetime, grace_days: int, zone: tzinfo) -> datetime:
    """Where the grace after a period ending at `period_end` ends: `grace_days` days of the programme's
    calendar (`zone`) on, at the time of day there the period ended."""
    return add_days(period_end, grace_days, zone)


def benefits_until(
    state: State, period_end: datetime, grace_until: datetime | None, grace_days: int, zone: tzinfo
) -> datetime | None:
    """Until when the plan's benefits may be the member's. A renewing subscription either renews or falls
    past due, which keeps them through grace: so they last to period end plus grace, whether or not the
    renewal job has yet run. A canceled one ends at period end."""
    if state in (State.trialing, State.active):
        return grace_end(period_end, grace_days, zone)
    if state is State.canceled:
        return period_end
    if state is State.past_due:
        return grace_until
    return None


def next_action_at(
    *,
    state: State,
    period_number: int,
    period_end: datetime,
    grace_until: datetime | None,
    notice_sent_for: int,
    next_coupon_at: datetime | None,
    notice: timedelta,
) -> datetime | None:
    """When the renewal job must next look at a subscription in this position (None: never again)."""
    times: list[datetime] = []
    if state in (State.trialing, State.active):
        times.append(period_end)
        if notice_sent_for < period_number:
            times.append(period_end - notice)
    elif state is State.canceled:
        times.append(period_end)
    elif state is State.past_due and grace_until is not None:
        times.append(grace_until)
        if notice_sent_for < period_number:  # what the overdue period costs changed: billing hears it again
            times.append(period_end - notice)
    if state in (State.active, State.canceled) and next_coupon_at is not None:
        times.append(next_coupon_at)
    return min(times, default=None)
