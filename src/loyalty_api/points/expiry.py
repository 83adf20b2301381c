"""The expiry job: points whose lots reached their end leave the balance, oldest first."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.points.accounts import expire_due_points
from loyalty_api.points.repository import LotRepository, PointsAccountRepository


@dataclass(frozen=True, slots=True)
class ExpiryRun:
    members: int
    points: int


async def expire_points(units: UnitsOfWork, *, batch: int = 500) -> ExpiryRun:
    """Every member with due lots, a batch of members at a time, each in a unit of work of its own; how many
    members lost points, and how many points.

    Members walk by id, so those whose due points are all on hold cannot keep the others waiting. Each member
    is claimed, their row and account locked unless someone holds either: workers running the job at once
    share the members between them, none waiting for another, and none expires anything twice. A member
    whose rows a till holds is left to the change under way (which settles what is due itself) or to the
    next run."""
    members = points = 0
    after: uuid.UUID | None = None
    while True:
        async with units.read() as uow:
            member_ids = await LotRepository(uow.session).list_members_with_due_lots(
                uow.clock.now(), after=after, limit=batch
            )
        for member_id in member_ids:
            async with units.begin() as uow:
                status = await PointsAccountRepository(uow.session).claim(member_id)
                if status is None:
                    continue
                expired = await expire_due_points(uow, member_id, status=status)
            members += expired > 0
            points += expired
        if len(member_ids) < batch:
            return ExpiryRun(members=members, points=points)
        after = member_ids[-1]
