"""The leaderboard: who earned the most points in a week or a month, among members who opted in
(`leaderboard_opt_in`, set on the member). It shows no personal data: each member by their id and their card
number masked to its last four digits, which is what a member recognises on their own card and no one can
call or mail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from loyalty_api.analytics.periods import Period, period_around
from loyalty_api.db.pagination import decode_place, encode_place, scope_of
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.leaderboard.repository import LeaderboardRepository
from loyalty_api.points.service import CLOCK_SKEW, OFFLINE_GRACE
from loyalty_api.program.service import get_program

SHOWN_DIGITS = 4
MAX_PLACE = 2**62  # far past any board, and far below the cursor's 64-bit limit


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
    next_cursor: str | None


def board_scope(period: Period, start: datetime) -> int:
    """Which board a cursor pages: the period and the instant it starts."""
    return scope_of("leaderboard", f"{period.value}/{start.astimezone(UTC).isoformat()}")


async def leaderboard(
    uow: UnitOfWork, *, period: Period, at: datetime | None, limit: int, cursor: str | None
) -> Leaderboard:
    """A page of the board of the programme's week or month (from Monday, or the 1st, in its time zone) that
    `at` falls in (now, without it). The cursor carries the last place shown, its points, member id (never
    its card number, which the board masks) and rank, so the next page goes on from there and ranks a tie
    with it alike; and which board it is (period and start): another board's, or last week's once the week
    has turned, would number this one from its places."""
    zone = (await get_program(uow)).zone
    start, end = period_around(at or uow.clock.now(), period, zone)
    scope = board_scope(period, start)
    after: tuple[int, uuid.UUID] | None = None
    place = rank = points = 0  # the last place shown, its rank and points (none yet on the first page)
    if cursor is not None:
        points, last, rank, place = decode_place(cursor, (int, uuid.UUID, int, int), scope)  # type: ignore[assignment]
        # A cursor this service wrote has shown a place, ranked at or above it. A forged one must not number
        # the page (negative or made-up ranks), nor overflow the next cursor's 64-bit place (a 500).
        if not 1 <= rank <= place <= MAX_PLACE:
            raise InvalidField("cursor", "not a cursor this service returned")
        assert isinstance(last, uuid.UUID)
        after = (points, last)
    # An earn's purchase was made at most OFFLINE_GRACE before it was entered and at most CLOCK_SKEW after.
    entered = (start - CLOCK_SKEW, end + OFFLINE_GRACE)
    leaders = await LeaderboardRepository(uow.session).list_leaders(
        start, end, entered=entered, after=after, limit=limit + 1
    )
    items: list[Standing] = []
    for leader in leaders[:limit]:
        place += 1
        rank = rank if leader.points == points else place
        points = leader.points
        items.append(Standing(rank, leader.member_id, mask(leader.member_number), leader.points))
    next_cursor = None
    if len(leaders) > limit:
        next_cursor = encode_place((points, leaders[limit - 1].member_id, rank, place), scope)
    return Leaderboard(period=period, start=start, end=end, items=items, next_cursor=next_cursor)
