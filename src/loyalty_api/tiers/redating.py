"""The worker's re-dating of members' window ends: an end worked out under an earlier revision of its tier's
window than the one the tier has is re-dated through each change of the window since and stored so.

Such an end is an earn's (or a review's, an override's end) that read the ladder before a change of the
window came: it was under way while the tier's PUT re-dated the members it could see, or ran in a process not
yet told of the change (the cached ladder is forgotten there once the change's notification arrives, or its
time runs out: db/invalidation.py). The PUT cannot wait for those (the till's earn takes no lock it would
wait on, and a process may read its cached ladder after the PUT committed), so each end names the revision it
was worked out under and is read as the window now stands (`LadderTier.as_it_stands`) until this job has
stored it so, for what reads ends in the database (the review's and the reminders' walks).
"""

from __future__ import annotations

from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.program.service import get_program
from loyalty_api.tiers.repository import MemberTierRepository
from loyalty_api.tiers.service import get_ladder


async def redate_window_ends(units: UnitsOfWork, *, batch: int = 500) -> int:
    """Store each end worked out under an earlier revision of its tier's window as the window now stands; how
    many were. A batch of members in each transaction, locked unless another holds them (left to the next
    run), so running it twice or in two processes is harmless. Ends of the tier earned before an override
    too, which the override's end gives back."""
    async with units.read() as uow:
        ladder = await get_ladder(uow)
        zone = (await get_program(uow)).zone
    stored = 0
    for tier in ladder.tiers:
        if not tier.past_windows:
            continue  # no change of its window ever moved an end
        for earned in (False, True):
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
                    break
    return stored
