"""Activities: what a member earns for a check-in, a review, a share or a completed profile.

An operator sets one rule per type of activity: points each time, at most `daily_cap` times a programme day
and `period_cap` times a `cap_period`, and streak bonuses for consecutive programme days; it is in force
while active and within its window (`valid_from`, `valid_until`), as an earning rule is. One rule per type,
so an activity meets one rule: the priority and stacking of earning rules have nothing to order here. A till,
an app or a shop reports an activity with a `ref` of its own; each (member, type, ref) is rewarded once, and
the same ref again answers the first result. An activity over a cap is refused and not recorded (409
`activity_cap_reached`): nothing is written that a member could farm, and the ref may earn once the cap
resets.

Recording locks the member and their account first, as earn does (points/accounts.lock_earner), so the
de-duplication, the caps and the streak are read behind the lock: simultaneous activities of one member
take turns and never pass a cap together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Any, Final, Literal

from loyalty_api.activities.errors import (
    ActivityCapReached,
    ActivityRuleExists,
    ActivityRuleInactive,
    ActivityRuleNotFound,
    UnknownActivityType,
)
from loyalty_api.activities.events import ActivityRecorded, ActivityRuleChanged
from loyalty_api.activities.models import ActivityRule, MemberActivity
from loyalty_api.activities.repository import ActivityRuleRepository, MemberActivityRepository
from loyalty_api.activities.streaks import (
    CapPeriod,
    StreakBonus,
    bonus_for,
    next_period_start,
    period_start,
    streak_on,
)
from loyalty_api.clock import format_instant
from loyalty_api.db.changes import column_values
from loyalty_api.db.constraints import DuplicateKey
from loyalty_api.db.ids import new_id
from loyalty_api.db.pagination import Page, decode_cursor, page_of, scope_of
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import InvalidField, check_window
from loyalty_api.members.errors import MemberNotActive
from loyalty_api.outbox.service import emit_for_member, emit_for_programme
from loyalty_api.points.accounts import credit_points, lock_earner, settle_spared
from loyalty_api.points.events import BreakdownPayload
from loyalty_api.program.service import ProgramSettings, get_program

ACTIVITY_RULES = scope_of("activity_rules")  # the activity rules' cursors carry it


class _Unset(Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET


@dataclass(frozen=True, slots=True)
class Rule:
    id: uuid.UUID
    type: str
    name: str
    points: int
    daily_cap: int | None
    period_cap: int | None
    cap_period: CapPeriod
    streak_bonuses: list[StreakBonus]
    active: bool
    valid_from: datetime | None
    valid_until: datetime | None
    created_at: datetime
    updated_at: datetime


def _rule(row: ActivityRule) -> Rule:
    return Rule(
        id=row.id,
        type=row.type,
        name=row.name,
        points=row.points,
        daily_cap=row.daily_cap,
        period_cap=row.period_cap,
        cap_period=CapPeriod(row.cap_period),
        streak_bonuses=[StreakBonus(days=b["days"], points=b["points"]) for b in row.streak_bonuses],
        active=row.active,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _bonuses(bonuses: Sequence[StreakBonus]) -> list[dict[str, int]]:
    days = [bonus.days for bonus in bonuses]
    if len(set(days)) != len(days):
        raise InvalidField("streak_bonuses", "each streak length may have one bonus")
    return [{"days": b.days, "points": b.points} for b in sorted(bonuses, key=lambda b: b.days)]


async def _changed(uow: UnitOfWork, row: ActivityRule, change: Literal["created", "updated"]) -> None:
    await emit_for_programme(
        uow,
        ActivityRuleChanged(
            rule_id=row.id,
            type=row.type,
            active=row.active,
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            change=change,
        ),
        str(row.id),
    )


async def create_rule(
    uow: UnitOfWork,
    *,
    type: str,
    name: str,
    points: int,
    daily_cap: int | None,
    period_cap: int | None,
    cap_period: CapPeriod,
    streak_bonuses: Sequence[StreakBonus],
    active: bool,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
) -> Rule:
    check_window(valid_from, valid_until)
    repo = ActivityRuleRepository(uow.session)
    if await repo.exists_type(type):
        raise ActivityRuleExists(f"An activity rule for {type!r} exists")
    now = uow.clock.now()
    row = ActivityRule(
        type=type,
        name=name,
        points=points,
        daily_cap=daily_cap,
        period_cap=period_cap,
        cap_period=cap_period,
        streak_bonuses=_bonuses(streak_bonuses),
        active=active,
        valid_from=valid_from,
        valid_until=valid_until,
        created_at=now,
        updated_at=now,
    )
    try:
        await repo.insert_rule(row)
    except DuplicateKey as exc:  # another request made one for the type meanwhile
        raise ActivityRuleExists(f"An activity rule for {type!r} exists") from exc
    await _changed(uow, row, "created")
    return _rule(row)


async def update_rule(
    uow: UnitOfWork,
    rule_id: uuid.UUID,
    *,
    name: str | _Unset = UNSET,
    points: int | _Unset = UNSET,
    daily_cap: int | _Unset | None = UNSET,
    period_cap: int | _Unset | None = UNSET,
    cap_period: CapPeriod | _Unset = UNSET,
    streak_bonuses: Sequence[StreakBonus] | _Unset = UNSET,
    active: bool | _Unset = UNSET,
    valid_from: datetime | _Unset | None = UNSET,
    valid_until: datetime | _Unset | None = UNSET,
) -> Rule:
    """Change the fields given (None clears a cap or an end of the window); the type stays. Activities
    already rewarded keep their points; caps count them whatever the rule said then."""
    repo = ActivityRuleRepository(uow.session)
    row = await repo.lock_rule(rule_id)
    if row is None:
        raise ActivityRuleNotFound()
    before = column_values(row)
    if not isinstance(name, _Unset):
        row.name = name
    if not isinstance(points, _Unset):
        row.points = points
    if not isinstance(daily_cap, _Unset):
        row.daily_cap = daily_cap
    if not isinstance(period_cap, _Unset):
        row.period_cap = period_cap
    if not isinstance(cap_period, _Unset):
        row.cap_period = cap_period
    if not isinstance(streak_bonuses, _Unset):
        row.streak_bonuses = _bonuses(streak_bonuses)
    if not isinstance(active, _Unset):
        row.active = active
    if not isinstance(valid_from, _Unset):
        row.valid_from = valid_from
    if not isinstance(valid_until, _Unset):
        row.valid_until = valid_until
    check_window(row.valid_from, row.valid_until)
    if column_values(row) == before:  # sent again: no change to announce (db/changes.py)
        return _rule(row)
    row.updated_at = uow.clock.now()
    await repo.save_rule()
    await _changed(uow, row, "updated")
    return _rule(row)


async def get_rule(uow: UnitOfWork, rule_id: uuid.UUID) -> Rule:
    row = await ActivityRuleRepository(uow.session).get_rule(rule_id)
    if row is None:
        raise ActivityRuleNotFound()
    return _rule(row)


async def list_rules(uow: UnitOfWork, *, limit: int, cursor: str | None) -> Page[Rule]:
    """Every rule, active or not, oldest first, a page at a time."""
    rows = await ActivityRuleRepository(uow.session).list_rules(
        after=decode_cursor(cursor, ACTIVITY_RULES), limit=limit + 1
    )
    return page_of([_rule(row) for row in rows], limit, lambda rule: rule.id, ACTIVITY_RULES)


@dataclass(frozen=True, slots=True)
class RecordedActivity:
    id: uuid.UUID
    member_id: uuid.UUID
    type: str
    ref: str
    rule_id: uuid.UUID
    points_earned: int
    breakdown: list[BreakdownPayload]
    streak: int
    balance: int
    day: date
    recorded_at: datetime
    already_recorded: bool  # the ref was rewarded before, and this is that first result


def _recorded(row: MemberActivity, *, already_recorded: bool) -> RecordedActivity:
    return RecordedActivity(
        id=row.id,
        member_id=row.member_id,
        type=row.type,
        ref=row.ref,
        rule_id=row.rule_id,
        points_earned=row.points + row.bonus,
        breakdown=[BreakdownPayload.model_validate(line) for line in row.breakdown],
        streak=row.streak,
        balance=row.balance_after,
        day=row.day,
        recorded_at=row.created_at,
        already_recorded=already_recorded,
    )


def _day_start(day: date, program: ProgramSettings) -> datetime:
    return datetime.combine(day, time(), program.zone)


async def _check_caps(
    uow: UnitOfWork, program: ProgramSettings, rule: ActivityRule, member_id: uuid.UUID, today: date
) -> None:
    activities = MemberActivityRepository(uow.session)
    if rule.daily_cap is not None:
        done = await activities.count_activities(member_id, rule.type, since=today)
        if done >= rule.daily_cap:
            raise ActivityCapReached(
                f"Rewarded {done} times today, the most the rule allows",
                cap="daily",
                limit=rule.daily_cap,
                resets_at=format_instant(_day_start(today + timedelta(days=1), program)),
            )
    if rule.period_cap is not None:
        period = CapPeriod(rule.cap_period)
        done = await activities.count_activities(member_id, rule.type, since=period_start(today, period))
        if done >= rule.period_cap:
            resets = next_period_start(today, period)
            raise ActivityCapReached(
                f"Rewarded {done} times this {period}, the most the rule allows",
                cap="period",
                limit=rule.period_cap,
                resets_at=None if resets is None else format_instant(_day_start(resets, program)),
            )


async def record_activity(
    uow: UnitOfWork, *, member_id: uuid.UUID, type: str, ref: str, actor: uuid.UUID | None = None
) -> RecordedActivity:
    """Reward the member for an activity, once per (type, ref): the rule's points and any streak bonus, as one
    ledger entry of type `activity` with the rule in its breakdown. The same ref again answers the first
    result (`new` False) even if the rule changed or was switched off since."""
    program = await get_program(uow)
    activities = MemberActivityRepository(uow.session)
    try:
        earner = await lock_earner(uow, member_id)
    except MemberNotActive:
        # Behind the member's lock, which lock_earner took before it refused: a ref rewarded before the member
        # was suspended or closed, sent again (its reply lost), answers the first result as for an active
        # member, not member_not_active, which reads as the activity rewarded with nothing.
        found = await activities.get_activity(member_id, type, ref)
        if found is None:
            raise
        return _recorded(found, already_recorded=True)
    found = await activities.get_activity(member_id, type, ref)
    if found is not None:
        return _recorded(found, already_recorded=True)
    rule = await ActivityRuleRepository(uow.session).get_rule_by_type(type)
    if rule is None:
        raise UnknownActivityType(f"No activity rule for {type!r}")
    now = uow.clock.now()
    if not rule.active:
        raise ActivityRuleInactive(f"The rule for {type!r} is switched off")
    if rule.valid_from is not None and now < rule.valid_from:
        raise ActivityRuleInactive(
            f"The rule for {type!r} is in force from {format_instant(rule.valid_from)}",
            valid_from=format_instant(rule.valid_from),
        )
    if rule.valid_until is not None and now >= rule.valid_until:
        raise ActivityRuleInactive(
            f"The rule for {type!r} ended at {format_instant(rule.valid_until)}",
            valid_until=format_instant(rule.valid_until),
        )
    today = now.astimezone(program.zone).date()
    await _check_caps(uow, program, rule, member_id, today)

    latest = await activities.get_latest(member_id, type, up_to=today)
    streak = streak_on(today, *(latest or (None, 0)))
    bonuses = bonus_for(streak, _rule(rule).streak_bonuses)
    breakdown = [BreakdownPayload(rule=rule.name, kind="activity", points=rule.points)]
    breakdown += [
        BreakdownPayload(rule=f"{rule.name}: {b.days}-day streak", kind="streak_bonus", points=b.points)
        for b in bonuses
    ]
    bonus = sum(b.points for b in bonuses)
    total = rule.points + bonus
    activity_id = new_id()
    lines: list[dict[str, Any]] = [line.model_dump() for line in breakdown]
    # The event's balance is its entry's (a points.expired follows with its own); the answer's, stored for
    # replays, is what a read shows.
    balance = answered = earner.account.balance
    entry_id = None
    if total > 0:
        details = {"breakdown": lines, "activity_id": str(activity_id), "activity_type": type, "ref": ref}
        state, entry_id = await credit_points(
            uow,
            program,
            member_id=member_id,
            type="activity",
            points=total,
            details=details,
            lifetime=True,
            actor=actor,
        )
        balance = state.balance
        answered = (await settle_spared(uow, earner, state)).balance
    row = MemberActivity(
        id=activity_id,
        member_id=member_id,
        rule_id=rule.id,
        type=type,
        ref=ref,
        day=today,
        streak=streak.days,
        points=rule.points,
        bonus=bonus,
        breakdown=lines,
        entry_id=entry_id,
        balance_after=answered,
        created_at=now,
    )
    await activities.insert_activity(row)
    event = ActivityRecorded(
        member_id=member_id,
        activity_id=activity_id,
        type=type,
        ref=ref,
        points=total,
        breakdown=breakdown,
        streak=streak.days,
        balance=balance,
    )
    await emit_for_member(uow, event, member_id)
    return _recorded(row, already_recorded=False)
