"""The worker's re-dating of members' window ends, for what a change of the ladder could not see: an end
worked out under an earlier revision of its tier's window than the one the tier has is re-dated through each
change of the window since; a member on a tier that is no longer the entry tier, with no window, is given the
tier's window from now, as the change that ranked another tier below it dated the members it saw.

Either is the work of a transaction that read the ladder before the change came: under way while the change
re-dated or dated the members it could see (an earn, an enrolment on the entry tier), or in a process not yet
told of the change (the cached ladder is forgotten there once the change's notification arrives, or its time
runs out: db/invalidation.py). The change cannot wait for those (the till's earn and an enrolment take no lock
it would wait on, and a process may read its cached ladder after the change committed). So each end names the
revision it was worked out under, both are read as the change would have left them (membership.judged_end)
until this job has stored them so, for what reads ends in the database (the review's and the reminders'
walks).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.program.service import get_program
from loyalty_api.tiers.ladder import LadderTier
from loyalty_api.tiers.repository import MemberTierRepository
from loyalty_api.tiers.service import get_ladder


async def redate_window_ends(units: UnitsOfWork, *, batch: int = 500) -> int:
    """Store each end worked out under an earlier revision of its tier's window as the window now stands, and
    date the members left with none on a tier that is no longer the entry tier; how many ends were stored.
    A batch of members in each transaction, locked unless another holds them (left to the next run), so
    running it twice or in two processes is harmless. The ends of the tier earned before an override too,
    which the override's end gives back."""
    async with units.read() as uow:
        ladder = await get_ladder(uow)
        zone = (await get_program(uow)).zone
    stored = 0
    for tier in ladder.tiers:
        for earned in (False, True):
            if tier.past_windows:  # a change of its window moved ends
                stored += await _redate(units, tier, zone, earned=earned, batch=batch)
            if tier is not ladder.entry:
                stored += await _date(units, tier, zone, earned=earned, batch=batch)
    return stored


async def _redate(units: UnitsOfWork, tier: LadderTier, zone: ZoneInfo, *, earned: bool, batch: int) -> int:
    """The ends for `tier` worked out under an earlier revision of its window, stored as the window stands."""
    stored = 0
    while True:
        async with units.begin() as uow:
            repo = MemberTierRepository(uow.session)
            behind = await repo.lock_behind(tier.id, tier.revision, earned=earned, limit=batch)
            await repo.set_window_ends(
                [(member_id, tier.stored(tier.as_it_stands(end, zone))) for member_id, end in behind],
                earned=earned,
            )
        stored += len(behind)
        if len(behind) < batch:
            return stored


async def _date(units: UnitsOfWork, tier: LadderTier, zone: ZoneInfo, *, earned: bool, batch: int) -> int:
    """The members with no window on `tier`, which is not the entry tier, judged on its window from now."""
    dated = 0
    while True:
        async with units.begin() as uow:
            repo = MemberTierRepository(uow.session)
            undated = await repo.lock_undated(tier.id, earned=earned, limit=batch)
            end = tier.stored(tier.window_end(uow.clock.now(), zone))
            await repo.set_window_ends([(member_id, end) for member_id in undated], earned=earned)
        dated += len(undated)
        if len(undated) < batch:
            return dated
