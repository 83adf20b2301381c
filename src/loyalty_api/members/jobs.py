"""The lifecycle job: members whose stage time alone changes, and only those."""

from __future__ import annotations

import uuid
from typing import Any

from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.members.events import MemberLifecycleChanged
from loyalty_api.members.lifecycle import assess, thresholds_of
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
        changes.append(
            {"member": row.id, "stage": found.stage, "since": since, "due": found.due, "assessed": now}
        )
        # A member's first assessment (one from before lifecycles) sets their stage without an event; an
        # erased member's stage goes on moving in the figures, without one either (emit_unless_erased).
        if found.stage != row.stage and row.since is not None:
            event = MemberLifecycleChanged(member_id=row.id, previous=row.stage, stage=found.stage, at=since)
            events.append((event, row.id, row.status))
    await members.set_lifecycles(changes)
    await emit_unless_erased(uow, events)
    return len(due)
