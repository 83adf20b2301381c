"""The birthday job: on a member's birthday (in the programme's time zone), each birthday-gift benefit they
hold, from their tier, a plan in force or a partner's joint offer, gives them its coupon, once a year. It
reads only the members whose birthday it is, through the birthday's day key (members/birthday_keys.py),
whatever the size of the member base.

A run also looks at the days since the job's last complete run (its mark, job_marks), up to CATCH_UP_DAYS
back: the birthdays that fell while the worker was stopped (an outage, a long deploy) get the gifts they
would have had, where those were members on the day. Such a coupon is valid from the start of the day it is
given, as the plans' coupons a late run gives (subscriptions/periods.issue_coupons) are valid from then:
the outage does not spend the member's days of it, and a coupon for one day is not given already ended."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from loyalty_api.benefits.standing import MemberStanding, standings
from loyalty_api.coupons.repository import CouponRepository
from loyalty_api.coupons.service import issue_coupon
from loyalty_api.crypto import DecryptionFailed, Vault
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.grants.repository import BenefitRepository
from loyalty_api.job_marks.repository import JobMarkRepository
from loyalty_api.members.birthday_keys import birthday_keys, day_keys_celebrating_on
from loyalty_api.members.repository import MemberRepository
from loyalty_api.offers import BirthdayGift
from loyalty_api.program.service import get_program

log = logging.getLogger(__name__)

# The birthday job's mark: where its last complete run started.
MARK = "birthdays"
# How many days before the run's own a run looks back at most for birthdays the worker missed. A worker
# stopped longer than this leaves the birthdays before it without their gifts: a week late, a birthday gift
# is no longer one.
CATCH_UP_DAYS = 7


async def issue_birthday_gifts(units: UnitsOfWork, *, batch: int = 500) -> int:
    """Give today's birthday gifts, and those of the days since the last complete run (CATCH_UP_DAYS back
    at most); returns how many coupons were issued. Running it again (or in two processes) issues nothing
    more: each gift's coupon has a key of benefit, member and the birthday's year, so a gift given by two of
    a member's sources, or on two runs, is given once."""
    await key_birthdays(units, batch=batch)
    now = units.clock.now()
    async with units.read() as uow:
        giving = await BenefitRepository(uow.session).exists_granted("birthday_gift")
        program = await get_program(uow)
        reached = await JobMarkRepository(uow.session).get_reached(MARK)
        days = [_Day.of(uow.vault, program.zone, day) for day in days_to_look_at(now, reached, program.zone)]
    # Today's start: the birthday's own on the day, and for one missed, the start of the day it is given.
    given_from = program.day_start(now)
    issued = 0
    if giving:
        for day in days:
            issued += await _give_days_gifts(units, day, given_from, batch)
    # Marked even when no benefit gives a gift: a gift attached later starts from its day, not from days gone.
    async with units.begin() as uow:
        await JobMarkRepository(uow.session).set_reached(MARK, now)
    return issued


def days_to_look_at(now: datetime, reached: datetime | None, zone: ZoneInfo) -> list[date]:
    """The programme's days whose birthdays a run at `now` looks at, oldest first: from the day the last
    complete run started on (`reached`; those enrolled or given a gift later that day were not seen by it) to
    today, CATCH_UP_DAYS before today at most. Today's alone for a first run, and for a clock stepped back
    behind the mark."""
    today = now.astimezone(zone).date()
    if reached is None:
        return [today]
    first = max(reached.astimezone(zone).date(), today - timedelta(days=CATCH_UP_DAYS))
    return [first + timedelta(days=n) for n in range((today - first).days + 1)] or [today]


@dataclass(frozen=True, slots=True)
class _Day:
    day: date
    ends: datetime  # when the next day begins: a member enrolled before then was a member on the day
    day_keys: Sequence[str]  # the birthday keys of those who celebrate it

    @classmethod
    def of(cls, vault: Vault, zone: ZoneInfo, day: date) -> _Day:
        return cls(
            day=day,
            ends=datetime.combine(day + timedelta(days=1), time(), zone),
            day_keys=day_keys_celebrating_on(vault, day),
        )


async def _give_days_gifts(units: UnitsOfWork, day: _Day, given_from: datetime, batch: int) -> int:
    issued = 0
    after: uuid.UUID | None = None
    while True:
        async with units.read() as uow:
            celebrating = await MemberRepository(uow.session).list_celebrating(
                day.day_keys, enrolled_before=day.ends, after=after, limit=batch
            )
            held = await standings(uow, [(member.id, member) for member in celebrating])
            keys = {
                member.id: {
                    _issue_key(benefit_id, member.id, day.day) for benefit_id, _ in _gifts(held[member.id])
                }
                for member in celebrating
            }
            # Those given already (an earlier run today; the run after midnight looks at yesterday again) are
            # passed over here, in one read, rather than each in a writing transaction that gives nothing.
            given = await CouponRepository(uow.session).list_issue_keys(
                [member.id for member in celebrating], [key for wanted in keys.values() for key in wanted]
            )
        for member in celebrating:
            if keys[member.id] - given:  # read again, locked, as the gifts are given
                async with units.begin() as uow:
                    issued += await _give_gifts(uow, member.id, day, given_from)
        if len(celebrating) < batch:
            return issued
        after = celebrating[-1].id


def _gifts(standing: MemberStanding) -> list[tuple[uuid.UUID, BirthdayGift]]:
    return [
        (benefit.id, benefit.properties)
        for benefit in standing.benefits
        if isinstance(benefit.properties, BirthdayGift)
    ]


async def _give_gifts(uow: UnitOfWork, member_id: uuid.UUID, day: _Day, given_from: datetime) -> int:
    """The member's gifts as they stand now (the list was read in another transaction): one suspended, erased
    or given another birthday since gets none, and one whose tier, plans or partner links changed gets the
    gifts of their standing now."""
    member = await MemberRepository(uow.session).lock_celebrating(
        member_id, day.day_keys, enrolled_before=day.ends
    )
    if member is None:
        return 0
    standing = (await standings(uow, [(member.id, member)]))[member.id]
    issued = 0
    for benefit_id, gift in _gifts(standing):
        issued += await _give(uow, benefit_id, gift, member.id, day.day, given_from)
    return issued


async def key_birthdays(units: UnitsOfWork, *, batch: int = 500) -> int:
    """Give the birthdays stored before birthday keys existed their keys (decrypting each once); how many.
    Afterwards it finds nothing: members enrolled or changed since are keyed as their birthday is written."""
    keyed = 0
    after: uuid.UUID | None = None
    while True:
        async with units.begin() as uow:
            repo = MemberRepository(uow.session)
            found = await repo.list_unkeyed_birthdays(after=after, limit=batch)
            keys = []
            for member_id, encrypted in found:
                try:
                    birthday = date.fromisoformat(uow.vault.decrypt(encrypted))
                except (DecryptionFailed, ValueError):
                    # Not ours to read (another key's, or damaged): every other birthday still gets keyed.
                    log.warning("birthday of member %s cannot be read; left without keys", member_id)
                    continue
                day, month = birthday_keys(uow.vault, birthday)
                assert day is not None and month is not None
                keys.append((member_id, encrypted, day, month))
            await repo.set_birthday_keys(keys)
        keyed += len(keys)
        if len(found) < batch:
            return keyed
        after = found[-1][0]


async def _give(
    uow: UnitOfWork,
    benefit_id: uuid.UUID,
    gift: BirthdayGift,
    member_id: uuid.UUID,
    birthday: date,
    given_from: datetime,
) -> bool:
    coupon = await issue_coupon(
        uow,
        member_id=member_id,
        name=gift.coupon_name,
        offer=gift.coupon,
        valid_from=given_from,
        valid_until=given_from + timedelta(days=gift.valid_days),
        source_type="birthday_gift",
        source_id=benefit_id,
        issue_key=_issue_key(benefit_id, member_id, birthday),
    )
    return coupon is not None


def _issue_key(benefit_id: uuid.UUID, member_id: uuid.UUID, birthday: date) -> str:
    # The birthday's year, not the run's: a birthday on 31 December given on 2 January is that year's.
    return f"birthday:{benefit_id}:{member_id}:{birthday.year}"
