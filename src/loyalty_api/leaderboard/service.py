"""The leaderboard: who earned the most points in a week or a month, among members who opted in
(`leaderboard_opt_in`, set on the member). It shows no personal data: each member by their id and their card
number masked to its last four digits, which is what a member recognises on their own card and no one can
call or mail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from loyalty_api.analytics.periods import Period, period_around
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.leaderboard.repository import LeaderboardRepository
from loyalty_api.program.service import get_program

SHOWN_DIGITS = 4


def mask(member_number: str) -> str:
    """A card number with all but its last four digits hidden: `••••••4321`."""
    shown = member_number[-SHOWN_DIGITS:]
    return "•" * (len(member_number) - len(shown)) + shown


@dataclass(frozen=True, slots=True)
class Standing:
    rank: int  # 1 + how many earned more: equal points share a rank (1, 1, 3)
    member_id: uuid.UUID
    alias: str
    points: int


@dataclass(frozen=True, slots=True)
class Leaderboard:
    period: Period
    start: datetime
    end: datetime
    items: list[Standing]


async def leaderboard(uow: UnitOfWork, *, period: Period, at: datetime | None, limit: int) -> Leaderboard:
    """The top `limit` of the programme's week or month (from Monday, or the 1st, in its time zone) that `at`
    falls in (now, without it)."""
    zone = (await get_program(uow)).zone
    start, end = period_around(at or uow.clock.now(), period, zone)
    leaders = await LeaderboardRepository(uow.session).list_leaders(start, end, limit=limit)
    items: list[Standing] = []
    for place, leader in enumerate(leaders):
        tied = items and items[-1].points == leader.points
        rank = items[-1].rank if tied else place + 1
        items.append(Standing(rank, leader.member_id, mask(leader.member_number), leader.points))
    return Leaderboard(period=period, start=start, end=end, items=items)
