"""The expiry reminder job: members hear of their points that reach their end within the programme's
`expiry_reminder_days` (`points.expiring`), once for each lot, so a shop can tell them to use the points."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.outbox.service import emit_for_member
from loyalty_api.points.events import ExpiringDayPayload, PointsExpiring
from loyalty_api.points.repository import LotRepository, PointsAccountRepository
from loyalty_api.program.service import ProgramSettings, get_program


async def remind_expiring_points(units: UnitsOfWork, *, batch: int = 500) -> int:
    """Tell every active member with points ending within the programme's reminder days, of which they were
    not told yet; how many members were told.

    The lots are walked in order of their end, so each is read once a run. Each member is claimed, their
    account row locked unless someone holds it: workers running the job at once share the members, and none
    tells a member twice. A member whose row a till holds is told by the next run."""
    async with units.read() as uow:
        program = await get_program(uow)
        started = uow.clock.now()
    if program.expiry_reminder_days == 0:
        return 0
    until = started + timedelta(days=program.expiry_reminder_days)
    told = 0
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with units.read() as uow:
            lots = await LotRepository(uow.session).list_unreminded(started, until, after=after, limit=batch)
        for member_id in dict.fromkeys(lot.member_id for lot in lots):
            async with units.begin() as uow:
                if await PointsAccountRepository(uow.session).claim(member_id):
                    told += await _remind(uow, program, member_id, until)
        if len(lots) < batch:
            return told
        after = (lots[-1].expires_at, lots[-1].lot_id)


async def _remind(uow: UnitOfWork, program: ProgramSettings, member_id: uuid.UUID, until: datetime) -> bool:
    """Tell the member of their points ending by `until`, if some of them are news; whether they were told."""
    now = uow.clock.now()
    lots = LotRepository(uow.session)
    if not await lots.mark_reminded(member_id, now, until):
        return False  # told by another worker, spent, or no longer active
    ending = [(at, points) for at, points in await lots.expiring_by_date(member_id, now) if at <= until]
    days: dict[str, int] = {}
    for at, points in ending:
        day = at.astimezone(program.zone).date().isoformat()
        days[day] = days.get(day, 0) + points
    stored = (await PointsAccountRepository(uow.session).get_stored_accounts([member_id], now))[member_id][0]
    balance, held = stored.as_a_spend_finds()
    event = PointsExpiring(
        member_id=member_id,
        points=sum(points for _, points in ending),
        expires_at=ending[0][0],
        expiring=[ExpiringDayPayload(date=day, points=points) for day, points in days.items()],
        balance=balance,
        available=balance - held,
    )
    await emit_for_member(uow, event, member_id)
    return True
