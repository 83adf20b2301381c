"""The expiry job: points whose lots reached their end leave the balance, oldest first."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.points.accounts import record_entry, release_member_expired_holds
from loyalty_api.points.events import PointsExpired
from loyalty_api.points.ledger import plan_spending
from loyalty_api.points.repository import LotRepository, PointsAccountRepository
from loyalty_api.webhooks.outbox import emit_for_member


@dataclass(frozen=True, slots=True)
class ExpiryRun:
    members: int
    points: int


async def expire_member_points(uow: UnitOfWork, member_id: uuid.UUID) -> int:
    """Expire the member's due lots. Points on hold are spared until the hold ends: capturing spends the
    oldest lots first, and a release lets the next run expire them."""
    accounts = PointsAccountRepository(uow.session)
    now = uow.clock.now()
    locked = await accounts.lock(member_id, now)
    if locked is None:
        return 0
    if await release_member_expired_holds(uow, member_id):
        locked = await accounts.lock(member_id, now)
        assert locked is not None
    lots = LotRepository(uow.session)
    due = await lots.list_due_lots(member_id, now)
    expirable = min(sum(lot.remaining for lot in due), locked.available)
    if expirable <= 0:
        return 0
    plan = plan_spending(due, expirable)
    await lots.take(plan)
    state = await accounts.change(member_id, now=now, balance=-expirable)
    assert state is not None
    await record_entry(
        uow,
        member_id=member_id,
        type="expire",
        amount=-expirable,
        state=state,
        details={"lots": [{"lot_id": str(lot_id), "points": take} for lot_id, take in plan]},
    )
    await emit_for_member(
        uow, PointsExpired(member_id=member_id, points=expirable, balance=state.balance), member_id
    )
    return expirable


async def expire_points(units: UnitsOfWork, *, batch: int = 500) -> ExpiryRun:
    """One batch of members with due lots, each in a unit of work of its own. Running it twice, or in two
    processes at once, expires nothing twice: each member is handled behind their account row lock."""
    async with units.read() as uow:
        member_ids = await LotRepository(uow.session).list_members_with_due_lots(uow.clock.now(), batch)
    points = 0
    for member_id in member_ids:
        async with units.begin() as uow:
            points += await expire_member_points(uow, member_id)
    return ExpiryRun(members=len(member_ids), points=points)
