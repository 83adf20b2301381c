"""The birthday job: on a member's birthday (in the programme's time zone), each birthday-gift benefit they
hold, from their tier, a plan in force or a partner's joint offer, gives them its coupon, once a year. It
reads only the members whose birthday it is, through the birthday's day key (members/birthday_keys.py),
whatever the size of the member base."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from loyalty_api.benefits.standing import MemberStanding, standings
from loyalty_api.coupons.service import issue_coupon
from loyalty_api.crypto import DecryptionFailed
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.grants.repository import BenefitRepository
from loyalty_api.members.birthday_keys import birthday_keys, day_keys_celebrating_on
from loyalty_api.members.repository import MemberRepository
from loyalty_api.offers import BirthdayGift
from loyalty_api.program.service import get_program

log = logging.getLogger(__name__)


async def issue_birthday_gifts(units: UnitsOfWork, *, batch: int = 500) -> int:
    """Give today's birthday gifts; returns how many coupons were issued. Running it again the same day (or
    in two processes) issues nothing more: each gift's coupon has a key of benefit, member and year, so a
    gift given by two of a member's sources is given once."""
    await key_birthdays(units, batch=batch)
    now = units.clock.now()
    async with units.read() as uow:
        if not await BenefitRepository(uow.session).exists_granted("birthday_gift"):
            return 0
        program = await get_program(uow)
        today = now.astimezone(program.zone).date()
        day_keys = day_keys_celebrating_on(uow.vault, today)
    day = _Day(today=today, starts=program.day_start(now), day_keys=day_keys)
    issued = 0
    after: uuid.UUID | None = None
    while True:
        async with units.read() as uow:
            celebrating = await MemberRepository(uow.session).list_celebrating(
                day_keys, after=after, limit=batch
            )
            held = await standings(uow, [(member.id, member) for member in celebrating])
        for member in celebrating:
            if _gifts(held[member.id]):  # read again, locked, as the gifts are given
                async with units.begin() as uow:
                    issued += await _give_gifts(uow, member.id, day)
        if len(celebrating) < batch:
            return issued
        after = celebrating[-1].id


@dataclass(frozen=True, slots=True)
class _Day:
    today: date
    starts: datetime  # when the day begins in the programme's time zone
    day_keys: Sequence[str]  # the birthday keys of those who celebrate it


def _gifts(standing: MemberStanding) -> list[tuple[uuid.UUID, BirthdayGift]]:
    return [
        (benefit.id, benefit.properties)
        for benefit in standing.benefits
        if isinstance(benefit.properties, BirthdayGift)
    ]


async def _give_gifts(uow: UnitOfWork, member_id: uuid.UUID, day: _Day) -> int:
    """The member's gifts as they stand now (the list was read in another transaction): one suspended, erased
    or given another birthday since gets none, and one whose tier, plans or partner links changed gets the
    gifts of their standing now."""
    member = await MemberRepository(uow.session).lock_celebrating(member_id, day.day_keys)
    if member is None:
        return 0
    standing = (await standings(uow, [(member.id, member)]))[member.id]
    issued = 0
    for benefit_id, gift in _gifts(standing):
        issued += await _give(uow, benefit_id, gift, member.id, day.today, day.starts)
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
    today: date,
    starts: datetime,
) -> bool:
    coupon = await issue_coupon(
        uow,
        member_id=member_id,
        name=gift.coupon_name,
        offer=gift.coupon,
        valid_from=starts,
        valid_until=starts + timedelta(days=gift.valid_days),
        source_type="birthday_gift",
        source_id=benefit_id,
        issue_key=f"birthday:{benefit_id}:{member_id}:{today.year}",
    )
    return coupon is not None
