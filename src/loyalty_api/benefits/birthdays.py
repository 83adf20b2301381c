"""The birthday job: on a member's birthday (in the programme's time zone), each birthday-gift benefit of
their tier gives them its coupon, once a year."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from loyalty_api.coupons.service import issue_coupon
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.earning.kinds import is_birthday
from loyalty_api.members.repository import MemberRepository
from loyalty_api.offers import BirthdayGift
from loyalty_api.program.service import get_program
from loyalty_api.tiers.ladder import GrantedBenefit
from loyalty_api.tiers.service import get_ladder


async def issue_birthday_gifts(units: UnitsOfWork, *, batch: int = 500) -> int:
    """Give today's birthday gifts; returns how many coupons were issued. Running it again the same day (or
    in two processes) issues nothing more: each gift's coupon has a key of benefit, member and year.

    Birthdays are stored encrypted, so the job reads the members of gift-giving tiers in batches and decrypts
    their birthdays here; no birthday is ever stored or searched in the clear."""
    async with units.read() as uow:
        program = await get_program(uow)
        ladder = await get_ladder(uow)
    gifts = {
        tier.id: [b for b in tier.benefits if b.active and isinstance(b.properties, BirthdayGift)]
        for tier in ladder.tiers
    }
    gifts = {tier_id: found for tier_id, found in gifts.items() if found}
    if not gifts:
        return 0
    now = units.clock.now()
    today = now.astimezone(program.zone).date()
    starts = program.day_start(now)
    issued = 0
    after: uuid.UUID | None = None
    while True:
        async with units.read() as uow:
            members = await MemberRepository(uow.session).list_birthdays(
                list(gifts), after=after, limit=batch
            )
            celebrating = [
                (member_id, tier_id)
                for member_id, tier_id, encrypted in members
                if is_birthday(today, date.fromisoformat(uow.vault.decrypt(encrypted)), "day")
            ]
        for member_id, tier_id in celebrating:
            async with units.begin() as uow:
                for gift in gifts[tier_id]:
                    issued += await _give(uow, gift, member_id, today, starts)
        if len(members) < batch:
            return issued
        after = members[-1][0]


async def _give(
    uow: UnitOfWork, gift: GrantedBenefit, member_id: uuid.UUID, today: date, starts: datetime
) -> bool:
    properties = gift.properties
    assert isinstance(properties, BirthdayGift)
    coupon = await issue_coupon(
        uow,
        member_id=member_id,
        name=properties.coupon_name,
        offer=properties.coupon,
        valid_from=starts,
        valid_until=starts + timedelta(days=properties.valid_days),
        source_type="birthday_gift",
        source_id=gift.id,
        issue_key=f"birthday:{gift.id}:{member_id}:{today.year}",
    )
    return coupon is not None
