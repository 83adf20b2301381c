"""A member's place on the ladder: upgrade on the purchase that qualifies, review after the window and grace
end, an operator's override, and what the member sees of it.

Everything that changes a member's tier first locks the member's row (an earn does so before it touches
the points account), so an earn, the review job and an override never decide on the same member at once.
Tiers' rows come after members' in the lock order (tiers/service.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Literal
from zoneinfo import ZoneInfo

from loyalty_api.calendar_days import latest_before
from loyalty_api.db.pagination import Page, decode_cursor, page_of, scope_of
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.members.errors import MemberNotFound
from loyalty_api.members.repository import PointsHolder
from loyalty_api.orders.repository import OrderRepository
from loyalty_api.outbox.events import TierPayload
from loyalty_api.outbox.service import emit_for_member
from loyalty_api.program.service import get_program
from loyalty_api.tiers.errors import NoOverride
from loyalty_api.tiers.events import TierDowngraded, TierUpgraded
from loyalty_api.tiers.ladder import (
    Downgrade,
    Ladder,
    LadderTier,
    Metric,
    Standing,
    StoredEnd,
    TierRef,
    after_review,
    qualified_tier,
    year_end,
)
from loyalty_api.tiers.models import TierChange
from loyalty_api.tiers.repository import MemberTierRepository, MemberTierState, TierRepository, stored_end
from loyalty_api.tiers.service import get_ladder


@dataclass(frozen=True, slots=True)
class TierResult:
    tier: LadderTier | None
    changed: bool


async def _standing(
    uow: UnitOfWork,
    ladder: Ladder,
    member_id: uuid.UUID,
    at: datetime,
    zone: ZoneInfo,
    *,
    ended: bool = False,
) -> Standing:
    """The member's qualifying values for each window of the ladder as it stands at `at`; with `ended`, for
    the windows a review judges that ended at `at`, counting purchases made before it."""
    orders = OrderRepository(uow.session)
    return Standing(
        at=at,
        values={
            start: await orders.get_purchase_totals(member_id, start, at if ended else None)
            for start in ladder.windows(at, zone, ended=ended)
        },
        ended=ended,
    )


async def _move(
    uow: UnitOfWork,
    *,
    ladder: Ladder,
    member_id: uuid.UUID,
    current: LadderTier | None,
    target: LadderTier,
    change: str,
    reason: str,
    standing: Standing | None,
    zone: ZoneInfo,
    window_end: StoredEnd | None,
    override_until: datetime | None = None,
    earned: tuple[uuid.UUID | None, StoredEnd | None] = (None, None),
    since: datetime | None = None,
    actor: uuid.UUID | None = None,
) -> None:
    """Put the member on `target`, judged on the window ending at `window_end` (of `target`'s window as
    `ladder` has it), record why, and tell the world if they went up or down. An override (`override_until`,
    no window) keeps what the member had `earned` before it: the tier and its window's end."""
    now = uow.clock.now()
    repo = MemberTierRepository(uow.session)
    await repo.set_tier(
        member_id,
        tier_id=target.id,
        since=since or now,
        window_end=window_end,
        override_until=override_until,
        earned=earned,
    )
    kept_until = override_until or (None if window_end is None else target.kept_until(window_end.at, zone))
    await repo.insert_change(
        TierChange(
            member_id=member_id,
            from_tier_id=None if current is None else current.id,
            to_tier_id=target.id,
            from_code=None if current is None else current.code,
            to_code=target.code,
            change=change,
            reason=reason,
            ladder_version=ladder.version,
            qualification={} if standing is None else standing.as_record(ladder, zone),
            kept_until=kept_until,
            actor_key_id=actor,
            created_at=now,
        )
    )
    from_tier = None if current is None else TierPayload.model_validate(current.ref)
    to_tier = TierPayload.model_validate(target.ref)
    # The event says which kind of change it was, never the operator's free text (it may name people).
    reason = _EVENT_REASONS.get(change, change)
    if current is None or target.rank > current.rank:
        event: TierUpgraded | TierDowngraded = TierUpgraded(
            member_id=member_id,
            from_tier=from_tier,
            to_tier=to_tier,
            reason=reason,
            kept_until=kept_until,
        )
    elif target.rank < current.rank:
        event = TierDowngraded(
            member_id=member_id,
            from_tier=from_tier,
            to_tier=to_tier,
            reason=reason,
            kept_until=kept_until,
        )
    else:
        return
    await emit_for_member(uow, event, member_id)


_EVENT_REASONS = {"upgrade": "qualified", "downgrade": "review", "renewal": "review", "import": "imported"}


def _window_end(ladder: Ladder, tier: LadderTier, at: datetime, zone: ZoneInfo) -> StoredEnd | None:
    """The end of the window a member who qualifies for `tier` at `at` is judged on (none on the entry
    tier, which is never lost)."""
    return None if tier is ladder.entry else tier.stored(tier.window_end(at, zone))


def judged_end(
    ladder: Ladder, tier: LadderTier | None, end: StoredEnd | None, zone: ZoneInfo, now: datetime
) -> datetime | None:
    """The end of the window a member is judged on for `tier`, stored as `end`, as `ladder` stands (None: not
    judged, on the entry tier). Until the worker has stored it so (tiers/redating.py), what a transaction that
    read the ladder before a change (under way meanwhile, or in a process not yet told of it) stored is read
    as the change would have left it: an end worked out under the window before is re-dated; none on a tier
    that is no longer the entry tier (the ranks changed, which dates nobody) is the tier's window from now,
    as the worker will date it."""
    if end is not None:
        return end.at if tier is None else tier.as_it_stands(end, zone)
    if tier is None or tier is ladder.entry:
        return None
    return tier.window_end(now, zone)


def kept_until(ladder: Ladder, state: MemberTierState, zone: ZoneInfo, now: datetime) -> datetime | None:
    """Until when the member keeps their tier, then reviewed: an override's end, else the end of the window
    they are judged on plus their tier's grace as it stands."""
    if state.override_until is not None:
        return state.override_until
    tier = ladder.by_id(state.tier_id)
    judged = judged_end(ladder, tier, state.window_end, zone, now)
    if judged is None or tier is None:
        return judged
    return tier.kept_until(judged, zone)


async def after_purchase(
    uow: UnitOfWork,
    *,
    ladder: Ladder,
    member_id: uuid.UUID,
    tier_id: uuid.UUID | None,
    window_end: StoredEnd | None,
    override_until: datetime | None,
    standing: Standing,
) -> TierResult:
    """Upgrade the member if the purchase just recorded qualifies them for a higher tier, or push on the end
    of the window they are judged on (`window_end`) if it requalifies them for it. `standing` is the
    member's, counting that purchase, for the windows of `ladder.windows(standing.at, zone)`. Call with the
    member's row locked."""
    current = ladder.by_id(tier_id)
    if ladder.entry is None:
        return TierResult(tier=current, changed=False)
    now = standing.at
    if override_until is not None and override_until > now:
        # The operator's tier holds until the override ends, up or down: a purchase meanwhile neither lifts a
        # member put lower back up nor moves one put higher; the review then places them as they qualify.
        return TierResult(tier=current, changed=False)
    moved = False
    if override_until is not None:  # it has run out, and the review job has not got to it yet: it ends here
        state = await MemberTierRepository(uow.session).get_state(member_id)
        assert state is not None
        before = current
        # Ended here, by this purchase, which counts towards where the member is placed (the review had not
        # placed them yet): dated now.
        current, window_end = await _end_override(
            uow, ladder, state, reason="the override ended", actor=None, at=now
        )
        moved = current is not before
    zone = (await get_program(uow)).zone
    place = current or ladder.entry
    renewal = _window_end(ladder, place, now, zone)
    judged = judged_end(ladder, current, window_end, zone, now)
    may_renew = current is not None and renewal is not None and (judged is None or renewal.at > judged)
    if current is not None and ladder.above(current) is None and not may_renew:
        return TierResult(tier=current, changed=moved)  # at the top and already kept as long as can be
    qualified = qualified_tier(ladder, standing, zone) or ladder.entry
    if current is None or qualified.rank > current.rank:
        await _move(
            uow,
            ladder=ladder,
            member_id=member_id,
            current=current,
            target=qualified,
            change="upgrade",
            reason="qualified",
            standing=standing,
            zone=zone,
            window_end=_window_end(ladder, qualified, now, zone),
        )
        return TierResult(tier=qualified, changed=True)
    if may_renew and renewal is not None and standing.qualifies(current, ladder, zone):
        await MemberTierRepository(uow.session).set_window_end(member_id, renewal)
    return TierResult(tier=current, changed=moved)


async def after_purchase_in_a_past_year(
    uow: UnitOfWork,
    *,
    ladder: Ladder,
    member_id: uuid.UUID,
    occurred: datetime,
    after: TierResult,
    override_until: datetime | None,
) -> TierResult:
    """Move up a member whose purchase, recorded late, was made in a calendar year that has ended (a till's
    receipt from 30 December synced on 3 January) if that year's windows, counting it, reach a higher tier
    than the one `after` the purchase (`after_purchase`'s answer, carried on here): as if the till had been
    online, kept as from the purchase (the change itself is dated when it is made). The standing at now
    counts the year's purchases only towards the new year's windows, so a member on the entry tier, whom no
    review looks at, would never get the tier that year's spend won. Renewals need nothing here: the review
    judges the year past, the late purchase in it. Call with the member's row locked."""
    zone = (await get_program(uow)).zone
    now = uow.clock.now()
    ended = year_end(occurred, zone)
    if ladder.entry is None or ended > now or (override_until is not None and override_until > now):
        return after
    # Each tier's window that ended with that year: the year itself, or a rolling tier's days up to its end.
    then = await _standing(uow, ladder, member_id, ended, zone, ended=True)
    qualified = qualified_tier(ladder, then, zone)
    if qualified is None or (after.tier is not None and qualified.rank <= after.tier.rank):
        return after
    await _move(
        uow,
        ladder=ladder,
        member_id=member_id,
        current=after.tier,
        target=qualified,
        change="upgrade",
        reason="qualified",
        standing=then,
        zone=zone,
        window_end=_window_end(ladder, qualified, occurred, zone),
    )
    return TierResult(tier=qualified, changed=True)


async def tier_held_at(
    uow: UnitOfWork, member_id: uuid.UUID, at: datetime, tier_id: uuid.UUID | None
) -> uuid.UUID | None:
    """The tier the member, on `tier_id` now, held at `at`: the one the first change after `at` moved them
    from (an override included), or `tier_id` when none came since. A tier removed since is none."""
    change = await MemberTierRepository(uow.session).get_first_change_after(member_id, at)
    return tier_id if change is None else change.from_tier_id


async def after_total_raised(uow: UnitOfWork, member: PointsHolder) -> TierResult:
    """An order already counted for tiers (earned, with its purchase time) was given a larger total by its
    payment with points: a redeem's or a capture's order_total replaces the earn's cash amount. The member's
    qualifying spend rose as with a purchase, so they are judged as after one (after_purchase), now rather
    than at their next earn: the review job only looks at members whose window has ended. Call with the
    member's row locked, as an earn does (lock_earner)."""
    ladder = await get_ladder(uow)
    if ladder.entry is None:
        return TierResult(tier=ladder.by_id(member.tier_id), changed=False)
    zone = (await get_program(uow)).zone
    return await after_purchase(
        uow,
        ladder=ladder,
        member_id=member.id,
        tier_id=member.tier_id,
        window_end=stored_end(member.tier_window_end, member.tier_window_revision, member.tier_window_days),
        override_until=member.tier_override_until,
        standing=await _standing(uow, ladder, member.id, uow.clock.now(), zone),
    )


async def _lock(uow: UnitOfWork, member_id: uuid.UUID) -> MemberTierState:
    state = await MemberTierRepository(uow.session).get_state(member_id, lock=True)
    if state is None:
        raise MemberNotFound()
    return state


async def review_member(uow: UnitOfWork, member_id: uuid.UUID) -> bool:
    """Look again at a member whose time on their tier is up. False when it is not (any more), the member is
    not there any more (erased since the job listed them: one such member must not stop the run), or another
    transaction holds the member's row now (another worker reviewing them, or a purchase under way: the next
    run looks again), so that workers running the review at once share the members, none waiting."""
    state = await MemberTierRepository(uow.session).get_state(member_id, lock=True, unless_held=True)
    now = uow.clock.now()
    if state is None:
        return False
    ladder = await get_ladder(uow)
    program = await get_program(uow)
    until = kept_until(ladder, state, program.zone, now)
    if until is None or until > now:
        return False
    current = ladder.by_id(state.tier_id)
    repo = MemberTierRepository(uow.session)
    if state.override_until is not None:
        # Ended when its time ran out, not when this run came (the worker may have been down): the member is
        # placed, and their new tier dated and its window started, as the review on time would have.
        await _end_override(
            uow, ladder, state, reason="the override ended", actor=None, at=state.override_until
        )
        return True
    if current is None or current is ladder.entry:
        await repo.set_window_end(member_id, None)  # the entry tier is never lost
        return True
    # Judge the window the member held the tier through, which ended when the grace began: a purchase
    # in the grace period counts towards the new window (and requalifies at once if it reaches it).
    judged = judged_end(ladder, current, state.window_end, program.zone, now)
    assert judged is not None  # kept until a date, and not by an override
    standing = await _standing(uow, ladder, member_id, judged, program.zone, ended=True)
    target = after_review(ladder, current, standing, program.zone, Downgrade(program.tier_downgrade))
    # The member is placed as of when their time on the tier ran out, not as of this run: a review the worker
    # came to late (it was down) neither dates the change by when it came nor starts the new window then,
    # which would keep the tier longer and leave the purchases made meanwhile out of the window judged next.
    window_from = until
    if target.rank < current.rank and now > judged:
        # Never below what the window under way has reached already: a purchase in the grace that reached a
        # lower tier's bar moved nobody (the member was above it), and the judged window knows nothing of it.
        # (Without grace, reviewed at the very end of a rolling window, the window under way is the one judged
        # and would count again the purchase that won it, at its first instant.)
        under_way = await _standing(uow, ladder, member_id, now, program.zone)
        reached = qualified_tier(ladder, under_way, program.zone)
        if reached is not None and reached.rank > target.rank:
            # Won by the purchases up to now: its window starts after them, or they would count again.
            target, standing, window_from = reached, under_way, now
    change = "renewal" if target is current else "downgrade" if target.rank < current.rank else "upgrade"
    reason = {
        "renewal": "requalified at review",
        "downgrade": "did not requalify",
        "upgrade": "qualified",
    }[change]
    await _move(
        uow,
        ladder=ladder,
        member_id=member_id,
        current=current,
        target=target,
        change=change,
        reason=reason,
        standing=standing,
        zone=program.zone,
        window_end=_window_end(ladder, target, window_from, program.zone),
        since=state.tier_since if target is current else until,
    )
    return True


async def review_tiers(units: UnitsOfWork, *, batch: int = 200) -> int:
    """The review job: every member whose window and grace have ended, or whose override has, is renewed,
    moved up or moved down. Each member in their own transaction; running twice, or in two processes, reviews
    each member once, the processes sharing the members (review_member).

    One run walks every member due at its start, a batch at a time (the worker calls it every few minutes,
    and on 1 January plus grace a calendar-year ladder makes every holder due at once): each tier's members
    whose window ended its grace ago or earlier (the entry tier's too: members on a tier that became it are
    undated once), then the overrides that ended. Each walk moves on by (date, id), so it ends even if a
    member were to stay due. An end stored under an earlier revision of the tier's window is never later than
    the end it stands for (a new window never ends sooner): the walk meets its member no later, and
    review_member reads it as the window stands."""
    now = units.clock.now()
    async with units.read() as uow:
        ladder = await get_ladder(uow)
        zone = (await get_program(uow)).zone
    walks = [
        partial(
            MemberTierRepository.list_due_for_review,
            tier_id=tier.id,
            # The grace is days of the programme's calendar: no window end listed past this one has seen its
            # grace end (around a clock change a few more are, and review_member finds them not due).
            judged_by=latest_before(now, tier.grace_days, zone),
            limit=batch,
        )
        for tier in ladder.tiers
    ]
    walks.append(partial(MemberTierRepository.list_overrides_ended, now=now, limit=batch))
    reviewed = 0
    for walk in walks:
        after: tuple[datetime, uuid.UUID] | None = None
        while True:
            async with units.read() as uow:
                due = await walk(MemberTierRepository(uow.session), after=after)
            for _, member_id in due:
                async with units.begin() as uow:
                    reviewed += await review_member(uow, member_id)
            if len(due) < batch:
                break
            after = due[-1]
    return reviewed


def _named(ladder: Ladder, code: str, *, field: str) -> LadderTier:
    """The ladder's tier of `code`, or a refusal naming the request's `field`."""
    target = ladder.by_code(code)
    if target is None:
        raise InvalidField(field, f"no tier with code {code!r}")
    return target


async def place(
    uow: UnitOfWork, member_id: uuid.UUID, *, tier_code: str, kept_until: datetime, actor: uuid.UUID | None
) -> None:
    """Put a member on the tier they held in the programme's previous system (an import), as if they had just
    qualified for it: kept until `kept_until`, then reviewed by what they bought here (the window judged
    ends the tier's grace before), and moved up before that by a purchase as anyone is. The entry tier they
    hold already, for good."""
    if kept_until <= uow.clock.now():
        raise InvalidField("tier.until", "must be in the future")
    state = await _lock(uow, member_id)
    ladder = await get_ladder(uow)
    target = _named(ladder, tier_code, field="tier.code")
    if target is ladder.entry:
        return
    zone = (await get_program(uow)).zone
    await _move(
        uow,
        ladder=ladder,
        member_id=member_id,
        current=ladder.by_id(state.tier_id),
        target=target,
        change="import",
        reason="held in the previous system",
        standing=None,
        zone=zone,
        window_end=target.stored(target.judged_end(kept_until, zone)),
        actor=actor,
    )


async def override(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    *,
    tier_code: str,
    until: datetime,
    reason: str,
    actor: uuid.UUID | None,
) -> None:
    """Put the member on a tier by hand until `until`; then the review job puts them where they qualify."""
    now = uow.clock.now()
    if until <= now:
        raise InvalidField("until", "must be in the future")
    state = await _lock(uow, member_id)
    ladder = await get_ladder(uow)
    target = _named(ladder, tier_code, field="tier")
    if state.override_until == until and state.tier_id == target.id:
        # The override in force sent again (PUT takes no Idempotency-Key: a repeat sets the same one): no
        # second override in the member's history, `since` stays. Another reason is recorded as one.
        latest = await MemberTierRepository(uow.session).list_changes(member_id, before_id=None, limit=1)
        if latest and latest[0].change == "override" and latest[0].reason == reason:
            return
    # An override of an override keeps what the member had earned before the first.
    earned = (
        (state.tier_id, state.window_end)
        if state.override_until is None
        else (state.earned_id, state.earned_window_end)
    )
    await _move(
        uow,
        ladder=ladder,
        member_id=member_id,
        current=ladder.by_id(state.tier_id),
        target=target,
        change="override",
        reason=reason,
        standing=None,
        zone=(await get_program(uow)).zone,
        window_end=None,
        override_until=until,
        earned=earned,
        actor=actor,
    )


async def end_override(uow: UnitOfWork, member_id: uuid.UUID, *, actor: uuid.UUID | None) -> None:
    state = await _lock(uow, member_id)
    if state.override_until is None:
        raise NoOverride()
    await _end_override(
        uow,
        await get_ladder(uow),
        state,
        reason="an operator ended the override",
        actor=actor,
        at=uow.clock.now(),
    )


async def _end_override(
    uow: UnitOfWork,
    ladder: Ladder,
    state: MemberTierState,
    *,
    reason: str,
    actor: uuid.UUID | None,
    at: datetime,
) -> tuple[LadderTier, StoredEnd | None]:
    """Take the member off their override (row locked) and put them on the tier they had earned before it,
    while its time (its window and grace) lasts; if its time ran out meanwhile, where its review would have
    put them; higher when they qualify for more. As of `at`, when the override ended (its end, for a review
    that came late; now, for an operator or a purchase): the tier's `since` and its window start then. The
    tier, and the end of the window it is judged on."""
    program = await get_program(uow)
    zone, now = program.zone, uow.clock.now()
    standing = await _standing(uow, ladder, state.member_id, at, zone)
    target = qualified_tier(ladder, standing, zone) or ladder.entry
    assert target is not None
    earned = ladder.by_id(state.earned_id)
    window_end = _window_end(ladder, target, at, zone)
    judged = judged_end(ladder, earned, state.earned_window_end, zone, now)
    if earned is not None and earned.rank >= target.rank:
        kept = judged is None or earned.kept_until(judged, zone) > at
        # The tier the member qualifies for now, if it is the one they had earned, is kept as long as either
        # gives: a window from now ends sooner than the one they had earned after it was made shorter.
        later = judged is not None and (window_end is None or judged > window_end.at)
        if kept and (earned.rank > target.rank or later):
            target, window_end = earned, None if judged is None else _given_back(earned, state, judged, zone)
        elif not kept and judged is not None and earned.rank > target.rank:
            then = await _standing(uow, ladder, state.member_id, judged, zone, ended=True)
            reviewed = after_review(ladder, earned, then, zone, Downgrade(program.tier_downgrade))
            if reviewed.rank > target.rank:
                target, window_end = reviewed, _window_end(ladder, reviewed, at, zone)
    await _move(
        uow,
        ladder=ladder,
        member_id=state.member_id,
        current=ladder.by_id(state.tier_id),
        target=target,
        change="override_ended",
        reason=reason,
        standing=standing,
        zone=zone,
        window_end=window_end,
        since=at,
        actor=actor,
    )
    return target, window_end


def _given_back(earned: LadderTier, state: MemberTierState, judged: datetime, zone: ZoneInfo) -> StoredEnd:
    """The end of the window of the tier earned before an override (`judged`, as its window stands), as the
    override's end gives it back: as the worker stores it (`LadderTier.restored`), with the days its window
    runs from the purchase that won the tier, so that a later longer window counts from that purchase and
    not from a shorter window's start. None stored (its window from now), or one of no revision, is
    marked of the window the tier has."""
    end = state.earned_window_end
    if end is None or end.revision is None:
        return earned.stored(judged)
    return earned.restored(end, zone)


@dataclass(frozen=True, slots=True)
class Goal:
    """Reach `threshold` of `metric` with purchases from `window_start` on (and before `by`, when there is a
    deadline: for `keep`, the end of the window the review will judge)."""

    tier: TierRef
    metric: str
    window_start: datetime
    value: int
    threshold: int
    remaining: int
    by: datetime | None


@dataclass(frozen=True, slots=True)
class TierStatus:
    member_id: uuid.UUID
    tier: LadderTier | None
    since: datetime | None
    kept_until: datetime | None
    override_until: datetime | None
    next: Goal | None  # what reaches the next tier up (None at the top)
    keep: Goal | None  # what keeps the current tier at its review (None on the entry tier or when overridden)
    ladder_version: int


async def status(uow: UnitOfWork, member_id: uuid.UUID) -> TierStatus:
    orders = OrderRepository(uow.session)
    state = await MemberTierRepository(uow.session).get_state(member_id)
    if state is None:
        raise MemberNotFound()
    ladder = await get_ladder(uow)
    zone = (await get_program(uow)).zone
    now = uow.clock.now()
    current = ladder.by_id(state.tier_id)

    async def goal(tier: LadderTier, start: datetime, by: datetime | None) -> Goal:
        if start > now:
            value = 0
        else:
            spend, points = await orders.get_purchase_totals(member_id, start, by)
            value = spend if tier.metric is Metric.spend else points
        return Goal(
            tier=tier.ref,
            metric=tier.metric.value,
            window_start=start,
            value=value,
            threshold=tier.threshold,
            remaining=max(tier.threshold - value, 0),
            by=by,
        )

    above = ladder.entry if current is None else ladder.above(current)
    judged = None if current is ladder.entry else judged_end(ladder, current, state.window_end, zone, now)
    keep = None
    if current is not None and judged is not None:
        keep = (current, current.judged_start(judged, zone), judged)
    if current is not None and state.override_until is not None:
        # No window keeps an override's tier. Once it has ended the review is due now (_end_override), and it
        # places the member as of the override's end, however late it comes (the worker down): it gives back
        # the tier earned before it while that tier's time lasted then, judged on its window as ever; else
        # the member keeps the tier if the window under way then reached its bar. Counted to now instead, a
        # review come to after a new year (or after purchases left a rolling window) showed a member the
        # review keeps on the tier as needing all of its bar. (A purchase meanwhile ends the override itself.)
        keep = None
        earned = ladder.by_id(state.earned_id)
        ended = state.override_until
        if ended <= now and current is not ladder.entry:
            given = judged_end(ladder, earned, state.earned_window_end, zone, now)
            if earned is current and given is not None and current.kept_until(given, zone) > ended:
                keep = (current, current.judged_start(given, zone), given)
            else:
                keep = (current, current.window_start(ended, zone), ended)
    return TierStatus(
        member_id=member_id,
        tier=current,
        since=state.tier_since,
        kept_until=kept_until(ladder, state, zone, now),
        override_until=state.override_until,
        next=None if above is None else await goal(above, above.window_start(now, zone), None),
        keep=None if keep is None else await goal(*keep),
        ladder_version=ladder.version,
    )


# How a member's tier changed: what `tier_changes.change` holds.
ChangeKind = Literal["upgrade", "downgrade", "renewal", "override", "override_ended", "import"]


@dataclass(frozen=True, slots=True)
class TierChangeView:
    """One change of a member's tier, its tiers shown as the ladder the change was decided on named them."""

    id: uuid.UUID
    from_tier: TierRef | None
    to_tier: TierRef
    change: str
    reason: str
    ladder_version: int | None
    qualification: dict[str, Any]
    kept_until: datetime | None
    created_at: datetime


async def history(
    uow: UnitOfWork, member_id: uuid.UUID, *, limit: int, cursor: str | None
) -> Page[TierChangeView]:
    if await MemberTierRepository(uow.session).get_state(member_id) is None:
        raise MemberNotFound()
    scope = scope_of("tier_history", member_id)
    changes: Sequence[TierChange] = await MemberTierRepository(uow.session).list_changes(
        member_id, before_id=decode_cursor(cursor, scope), limit=limit + 1
    )
    page = page_of(changes, limit, lambda change: change.id, scope)
    named = await _tiers_as_named(uow, page.items)
    return page.with_items(
        [
            TierChangeView(
                id=c.id,
                from_tier=None if c.from_code is None else named(c.ladder_version, c.from_code),
                to_tier=named(c.ladder_version, c.to_code),
                change=c.change,
                reason=c.reason,
                ladder_version=c.ladder_version,
                qualification=c.qualification,
                kept_until=c.kept_until,
                created_at=c.created_at,
            )
            for c in page.items
        ]
    )


async def _tiers_as_named(
    uow: UnitOfWork, changes: Sequence[TierChange]
) -> Callable[[int | None, str], TierRef]:
    """A change keeps the codes of its tiers and the ladder version it was decided on: the tier is named and
    ranked as that version had it; a tier of a version not recorded, as the ladder has it now; a tier
    removed since, as the latest version that had it."""
    repo = TierRepository(uow.session)
    versions: dict[int, dict[str, TierRef]] = {}
    for number in {c.ladder_version for c in changes if c.ladder_version is not None}:
        recorded = await repo.get_version(number)
        versions[number] = {} if recorded is None else _refs(recorded.tiers)
    now = {t.code: t.ref for t in (await get_ladder(uow)).tiers}

    def known(version: int | None, code: str) -> bool:
        return code in versions.get(version or 0, {}) or code in now

    missing = {
        code
        for c in changes
        for code in (c.from_code, c.to_code)
        if code is not None and not known(c.ladder_version, code)
    }
    removed = _refs(await repo.latest_snapshots_of(missing)) if missing else {}

    def named(version: int | None, code: str) -> TierRef:
        found = versions.get(version or 0, {}).get(code) or now.get(code) or removed.get(code)
        # Only a tier no recorded ladder ever had (put in the database by hand) is known by its code alone.
        return found or TierRef(code=code, name=code, rank=0)

    return named


def _refs(snapshot: Sequence[Mapping[str, Any]]) -> dict[str, TierRef]:
    refs = (TierRef(code=str(t["code"]), name=str(t["name"]), rank=int(t["rank"])) for t in snapshot)
    return {ref.code: ref for ref in refs}
