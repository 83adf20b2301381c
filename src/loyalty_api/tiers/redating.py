"""The worker's re-dating of members' window ends, so that a change of the ladder answers in the same time
whatever the number of members it concerns:
- a change of a tier's window that moves ends writes the tier alone, with a new revision of its window: this
  job re-dates each end worked out under an earlier revision through each change since and stores it so, a
  batch at a time. An end an earn or a review stores later, having read the ladder before the change (under
  way meanwhile, or in a process not yet told of it: the cached ladder is forgotten there once the change's
  notification arrives, or its time runs out, db/invalidation.py), names its old revision and is re-dated
  the same way;
- a change of the ranks that makes another tier the entry tier (or adds one below it) writes no member: the
  old entry tier's members are left with no window on a tier that now needs one, as is a member put on it as
  the entry tier by a transaction that read the ranks before the change (an enrolment under way, a process
  not yet told): this job gives them all the tier's window from its run;
- the first tier made (a ladder that had none) writes no member either: members enrolled before it, on no
  tier, are put on the entry tier by this job, as an enrolment puts them (until then they read no tier, and
  an earn places them itself);
- an end written by the code before revisions (a process not yet upgraded, during a deploy) is marked as of
  the window the tier has, so that the next change re-dates it.
Until the job has been, readers take the ends as it will store them (membership.judged_end); what reads ends
in the database (the review's and the reminders' walks) finds a stored end no later than the one it stands
for (a new window never ends sooner) and judges the member as read.
"""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo

from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.program.service import get_program
from loyalty_api.tiers.ladder import LadderTier
from loyalty_api.tiers.repository import MemberTierRepository
from loyalty_api.tiers.service import get_ladder


async def redate_window_ends(units: UnitsOfWork, *, batch: int = 500) -> int:
    """Put members on no tier on the entry tier, store each end worked out under an earlier revision of its
    tier's window as the window now stands, and mark the ends of a tier but the entry tier that name no
    revision (dating those with none); how many members were written. A batch of members in each
    transaction, locked unless another holds them (left to the next run), so running it twice or in two
    processes is harmless. The ends of the tier earned before an override too, which the override's end
    gives back."""
    async with units.read() as uow:
        ladder = await get_ladder(uow)
        zone = (await get_program(uow)).zone
        # Looked for without a lock first: most runs find nothing, and take no write lock (SQLite's is the
        # database's).
        repo = MemberTierRepository(uow.session)
        behind = [
            (tier, earned)
            for tier in ladder.tiers
            if tier.revision > 1  # a change of its window moved ends
            for earned in (False, True)
            if await repo.exists_behind(tier.id, tier.revision, earned=earned)
        ]
        unrevised = [
            (tier, earned)
            for tier in ladder.tiers[1:]
            for earned in (False, True)
            if await repo.exists_unrevised(tier.id, earned=earned)
        ]
        placing = ladder.entry is not None and await repo.exists_without_tier()
    stored = await _place_on_entry_tier(units, batch=batch) if placing else 0
    for tier, earned in behind:
        stored += await _redate(units, tier, zone, earned=earned, batch=batch)
    for tier, earned in unrevised:
        stored += await _mark(units, tier, zone, earned=earned, batch=batch)
    return stored


async def _place_on_entry_tier(units: UnitsOfWork, *, batch: int) -> int:
    """Members enrolled while the ladder had no tier, put on the entry tier where every member starts (the
    first tier's creation places nobody, as a change of the ranks dates nobody: a programme's size)."""
    placed = 0
    while True:
        async with units.begin() as uow:
            found = await MemberTierRepository(uow.session).place_on_entry_tier(uow.clock.now(), limit=batch)
        placed += found
        if found < batch:
            return placed


async def _redate(units: UnitsOfWork, tier: LadderTier, zone: ZoneInfo, *, earned: bool, batch: int) -> int:
    """The ends for `tier` worked out under an earlier revision of its window, stored as the window stands."""
    stored = 0
    after: tuple[int, uuid.UUID] | None = None
    while True:
        async with units.begin() as uow:
            repo = MemberTierRepository(uow.session)
            behind = await repo.lock_behind(tier.id, tier.revision, earned=earned, after=after, limit=batch)
            await repo.set_window_ends(
                [(member_id, tier.restored(end, zone)) for member_id, end in behind],
                earned=earned,
            )
        stored += len(behind)
        if len(behind) < batch:
            return stored
        member_id, end = behind[-1]
        assert end.revision is not None  # it was before `tier.revision`
        after = (end.revision, member_id)


async def _mark(units: UnitsOfWork, tier: LadderTier, zone: ZoneInfo, *, earned: bool, batch: int) -> int:
    """The ends for `tier`, which is not the entry tier, that name no revision of its window: none at all is
    its window from now (the change that ranked another tier below it dated nobody); one written
    by the code before revisions is taken as of the window the tier has."""
    marked = 0
    while True:
        async with units.begin() as uow:
            repo = MemberTierRepository(uow.session)
            unrevised = await repo.lock_unrevised(tier.id, earned=earned, limit=batch)
            from_now = tier.window_end(uow.clock.now(), zone)
            await repo.set_window_ends(
                [(member_id, tier.stored(from_now if end is None else end)) for member_id, end in unrevised],
                earned=earned,
            )
        marked += len(unrevised)
        if len(unrevised) < batch:
            return marked
