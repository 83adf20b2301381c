"""The tier reminder job: members hear, the programme's `tier_reminder_days` before the window that keeps
their tier ends, what keeping it still takes (`tier.review_due`), once for each window."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.members.models import MemberStatus
from loyalty_api.outbox.events import TierPayload
from loyalty_api.outbox.service import emit_for_member
from loyalty_api.program.service import get_program
from loyalty_api.tiers.events import TierReviewDue
from loyalty_api.tiers.membership import status
from loyalty_api.tiers.repository import MemberTierRepository
from loyalty_api.tiers.service import get_ladder


async def remind_tier_reviews(units: UnitsOfWork, *, batch: int = 200) -> int:
    """Tell every active member whose tier's window ends within the programme's reminder days what keeping
    the tier takes, unless they were told of that window; how many members were told.

    Each tier's members are walked by the end of the window they are judged on. A member is claimed as the
    review claims them (a member another worker or a purchase holds is left to the next run), so workers
    running the job at once tell each member once."""
    async with units.read() as uow:
        program = await get_program(uow)
        ladder = await get_ladder(uow)
        started = uow.clock.now()
    if program.tier_reminder_days == 0:
        return 0
    ahead = timedelta(days=program.tier_reminder_days)
    told = 0
    for tier in ladder.tiers[1:]:  # the entry tier is never lost
        # Until the tier is kept until (its window and grace) has come: the review has not judged them yet.
        ended_after = started - timedelta(days=tier.grace_days)
        after: tuple[datetime, uuid.UUID] | None = None
        while True:
            async with units.read() as uow:
                due = await MemberTierRepository(uow.session).list_due_for_reminder(
                    tier.id, ended_after, started + ahead, after=after, limit=batch
                )
            for _, member_id in due:
                async with units.begin() as uow:
                    told += await _remind(uow, member_id, ahead)
            if len(due) < batch:
                break
            after = due[-1]
    return told


async def _remind(uow: UnitOfWork, member_id: uuid.UUID, ahead: timedelta) -> bool:
    """Tell the member what keeps their tier if its window ends within `ahead`; whether they were told."""
    repo = MemberTierRepository(uow.session)
    state = await repo.get_state(member_id, lock=True, unless_held=True)
    if state is None or state.window_end is None or state.status != MemberStatus.active:
        return False
    now = uow.clock.now()
    standing = await status(uow, member_id)
    keep = standing.keep
    if standing.tier is None or keep is None or keep.by is None or keep.by > now + ahead:
        return False  # an override holds the tier (its end sets the window anew), or not yet
    # The end told of is the window's as the tier's window stands (keep.by), which the stored one becomes once
    # the worker has re-dated an end worked out under the window before a change.
    if not await repo.mark_reminded(member_id, keep.by):
        return False  # another run told them
    if keep.by <= now:
        return False  # the window is over and the grace runs: nothing left to tell of it
    event = TierReviewDue(
        member_id=member_id,
        tier=TierPayload.model_validate(standing.tier.ref),
        metric=keep.metric,
        value=keep.value,
        threshold=keep.threshold,
        remaining=keep.remaining,
        window_start=keep.window_start,
        window_end=keep.by,
        kept_until=standing.tier.kept_until(keep.by, (await get_program(uow)).zone),
    )
    await emit_for_member(uow, event, member_id)
    return True
