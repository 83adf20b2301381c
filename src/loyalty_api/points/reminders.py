"""The expiry reminder job: members hear of their points that reach their end within the programme's
`expiry_reminder_days` (`points.expiring`), so a shop can tell them to use the points.

A member is told of a month's ends at once: when the first of their points ending in a month (of the
programme's time zone) comes within the days, the reminder counts every point of theirs ending by that
month's end, and those are not told of again. A member who shops every day hears about once a month, not
every day as each day's points come within the days."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from loyalty_api.calendar_days import add_months
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.outbox.service import emit_for_member
from loyalty_api.points.events import ExpiringDayPayload, PointsExpiring
from loyalty_api.points.repository import LotRepository, PointsAccountRepository
from loyalty_api.points.service import account_as_read
from loyalty_api.program.service import ProgramSettings, get_program


async def remind_expiring_points(units: UnitsOfWork, *, batch: int = 500) -> int:
    """Tell every active member with points ending within the programme's reminder days, of which they were
    not told yet; how many members were told.

    The lots are walked in order of their end; those told of leave the walk. Each member is claimed, their
    row and account locked unless someone holds either: workers running the job at once share the members,
    and none tells a member twice. A member whose rows a till or another worker holds is passed over: told by
    the next run, or by the other worker."""
    async with units.read() as uow:
        program = await get_program(uow)
        started = uow.clock.now()
    if program.expiry_reminder_days == 0:
        return 0
    until = started + timedelta(days=program.expiry_reminder_days)
    told = 0
    since = started
    # Members passed over, by the last end of theirs the walk met: only those with lots at the walk's
    # position (ties on one end) need leaving out, the walk is past the others' lots.
    passed: dict[uuid.UUID, datetime] = {}
    while True:
        async with units.read() as uow:
            lots = await LotRepository(uow.session).list_unreminded(
                started, until, since=since, passed=set(passed), limit=batch
            )
        last_end = {lot.member_id: lot.expires_at for lot in lots}
        for member_id, end in last_end.items():
            async with units.begin() as uow:
                if await PointsAccountRepository(uow.session).claim(member_id) is None:
                    passed[member_id] = end
                    continue
                told += await _remind(uow, program, member_id, started, until)
        if len(lots) < batch:
            return told
        since = lots[-1].expires_at
        passed = {member_id: end for member_id, end in passed.items() if end >= since}


def _month_after(moment: datetime, program: ProgramSettings) -> datetime:
    """When the programme's month after the one `moment` falls in begins."""
    local = moment.astimezone(program.zone)
    return add_months(local.replace(day=1, hour=0, minute=0, second=0, microsecond=0), 1, program.zone)


async def _remind(
    uow: UnitOfWork, program: ProgramSettings, member_id: uuid.UUID, started: datetime, until: datetime
) -> bool:
    """Tell the member of their points ending by the end of `until`'s month, if some of them are news;
    whether they were told. Whatever the walk found of theirs (ending after the run's `started`) is marked,
    so that it leaves the walk: told of, or ended meanwhile."""
    now = uow.clock.now()
    before = _month_after(until, program)
    lots = LotRepository(uow.session)
    if not await lots.mark_reminded(member_id, started, before, now=now):
        return False  # another worker told them, or the points were spent
    ending = [(at, points) for at, points in await lots.expiring_by_date(member_id, now) if at < before]
    if not ending:
        return False  # what was news has ended since the run began
    days: dict[str, int] = {}
    for at, points in ending:
        day = at.astimezone(program.zone).date().isoformat()
        days[day] = days.get(day, 0) + points
    state = await account_as_read(uow, member_id)
    assert state is not None, "the walk claimed the account"
    event = PointsExpiring(
        member_id=member_id,
        points=sum(points for _, points in ending),
        expires_at=ending[0][0],
        expiring=[ExpiringDayPayload(date=day, points=points) for day, points in days.items()],
        balance=state.balance,
        available=state.available,
    )
    await emit_for_member(uow, event, member_id)
    return True
