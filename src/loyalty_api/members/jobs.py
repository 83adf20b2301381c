"""The lifecycle job: members whose stage time alone changes, and only those."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.members.events import MemberLifecycleChanged
from loyalty_api.members.lifecycle import Assessment, assess, thresholds_of
from loyalty_api.members.repository import MemberRepository
from loyalty_api.members.service import emit_unless_erased
from loyalty_api.orders.repository import OrderRepository
from loyalty_api.outbox.events import Event
from loyalty_api.program.service import get_program, lifecycle_changed_at


async def assess_lifecycles(units: UnitsOfWork, *, batch: int = 500) -> int:
    """Assess every member whose stage is due to change (and, after the programme's thresholds changed,
    every member assessed before that), a batch at a time, each batch in one transaction: the members'
    latest purchases in one statement, their new stages in another, the events of those whose stage changed
    in a third. Running twice, or in two processes at once, assesses each member once (rows locked, the
    locked skipped). How many members were assessed."""
    assessed = 0
    while True:
        async with units.begin() as uow:
            done = await _assess_batch(uow, batch)
        assessed += done
        if done < batch:
            return assessed


async def _assess_batch(uow: UnitOfWork, batch: int) -> int:
    now = uow.clock.now()
    thresholds = thresholds_of(await get_program(uow))
    members = MemberRepository(uow.session)
    changed = await lifecycle_changed_at(uow)
    # Never later than now: a worker whose clock is behind the API's would otherwise find the members it has
    # just assessed still "assessed before the change", again and again.
    reassess_before = None if changed is None else min(changed, now)
    due = await members.lock_lifecycles_due(now, reassess_before=reassess_before, limit=batch)
    if not due:
        return 0
    bought = await OrderRepository(uow.session).list_last_purchases([row.id for row in due])
    changes: list[dict[str, Any]] = []
    events: list[tuple[Event, uuid.UUID, str]] = []
    for row in due:
        found = assess(
            enrolled_at=row.created_at, last_purchase_at=bought.get(row.id), now=now, thresholds=thresholds
        )
        if row.since is None:
            since = now
        elif found.stage == row.stage:
            since = row.since
        else:
            # Moved on when the days ran out, not when this run came (the worker may have been down for days),
            # yet never before the member was last seen in their stage (new thresholds date from the change).
            seen = row.assessed_at or found.began
            if reassess_before is not None and seen < reassess_before:
                seen = reassess_before
            since = min(max(found.began, seen), now)
            # A member's first assessment (one from before lifecycles, since None) sets their stage without an
            # event; an erased member's stage goes on moving in the figures, without one either
            # (emit_unless_erased).
            for previous, stage, at in _changes_passed(row.stage, found, seen=seen, since=since):
                event = MemberLifecycleChanged(member_id=row.id, previous=previous, stage=stage, at=at)
                events.append((event, row.id, row.status))
        changes.append(
            {"member": row.id, "stage": found.stage, "since": since, "due": found.due, "assessed": now}
        )
    await members.set_lifecycles(changes)
    await emit_unless_erased(uow, events)
    return len(due)


def _changes_passed(
    previous: str, found: Assessment, *, seen: datetime, since: datetime
) -> list[tuple[str, str, datetime]]:
    """The changes to tell, in order, as (previous, stage, at): one for each stage time took the member
    through after `previous`, each at when its days ran out, the last at `since`. A worker that was down while
    several ran out (active to at_risk to lapsed) tells each, as it would have on time, so a receiver acting
    on entering a stage misses none. A stage that began before the member was last seen in `previous` (new
    thresholds) is one they were never in: left out, as is every stage between when `previous` is not on the
    member's way (new, longer thresholds put them back a stage): one event then, as before."""
    stages: list[str] = [stage for stage, _ in found.path]
    passed: list[tuple[str, datetime]] = []
    if previous in stages:
        between = found.path[stages.index(previous) + 1 : -1]
        passed = [(stage, began) for stage, began in between if began > seen]
    told: list[tuple[str, str, datetime]] = []
    for stage, at in [*passed, (found.stage, since)]:
        told.append((previous, stage, at))
        previous = stage
    return told
