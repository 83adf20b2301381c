"""The expiry reminder job: members hear of their points that reach their end within the programme's
`expiry_reminder_days` (`points.expiring`), so a shop can tell them to use the points.

A member is told of a month's ends at once: when the first of their points ending in a month (of the
programme's time zone) comes within the days, the reminder counts every point of theirs ending by that
month's end, and those are not told of again. A member who shops every day hears about once a month, not
every day as each day's points come within the days."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.outbox.service import emit_for_member
from loyalty_api.points.events import ExpiringDayPayload, PointsExpiring
from loyalty_api.points.repository import LotRepository, PointsAccountRepository
from loyalty_api.program.service import ProgramSettings, add_months, get_program


async def remind_expiring_points(units: UnitsOfWork, *, batch: int = 500) -> int:
    """Tell every active member with points ending within the programme's reminder days, of which they were
    not told yet; how many members were told.

    The lots are walked in order of their end; those told of leave the walk. Each member is claimed, their
    account row locked unless someone holds it: workers running the job at once share the members, and none
    tells a member twice. A member whose row a till holds is passed over, and told by the next run."""
    async with units.read() as uow:
        program = await get_program(uow)
        started = uow.clock.now()
    if program.expiry_reminder_days == 0:
        return 0
    until = started + timedelta(days=program.expiry_reminder_days)
    told = 0
    since = started
    passed: set[uuid.UUID] = set()
    while True:
        async with units.read() as uow:
            lots = await LotRepository(uow.session).list_unreminded(
                started, until, since=since, passed=passed, limit=batch
            )
        for member_id in dict.fromkeys(lot.member_id for lot in lots):
            async with units.begin() as uow:
                reminded = await PointsAccountRepository(uow.session).claim(member_id) and await _remind(
                    uow, program, member_id, until
                )
            if reminded:
                told += 1
            else:  # held by a till, or told by another worker meanwhile: not this run's to tell
                passed.add(member_id)
        if len(lots) < batch:
            return told
        since = lots[-1].expires_at


def _month_after(moment: datetime, program: ProgramSettings) -> datetime:
    """When the programme's month after the one `moment` falls in begins."""
    local = moment.astimezone(program.zone)
    return add_months(local.replace(day=1, hour=0, minute=0, second=0, microsecond=0), 1)


async def _remind(uow: UnitOfWork, program: ProgramSettings, member_id: uuid.UUID, until: datetime) -> bool:
    """Tell the member of their points ending by the end of `until`'s month, if some of them are news;
    whether they were told."""
    now = uow.clock.now()
    before = _month_after(until, program)
    lots = LotRepository(uow.session)
    if not await lots.mark_reminded(member_id, now, before):
        return False
    ending = [(at, points) for at, points in await lots.expiring_by_date(member_id, now) if at < before]
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
