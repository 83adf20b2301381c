"""The leaderboard: points earned in the programme's week or month by active members who opted in, most
first, each shown by id and masked card number only."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.db.pagination import decode_key, encode_key
from tests.activities.helpers import add_activity_rule, record
from tests.builders import enrol
from tests.conftest import START, bearer
from tests.points.helpers import earn, set_program


async def opt_in(client: httpx.AsyncClient, key: str, member_id: str, value: bool = True) -> dict[str, Any]:
    response = await client.patch(
        f"/v1/members/{member_id}", json={"leaderboard_opt_in": value}, headers=bearer(key)
    )
    assert response.status_code == 200, response.text
    member: dict[str, Any] = response.json()
    return member


async def board(client: httpx.AsyncClient, key: str, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/leaderboard", params=params, headers=bearer(key))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def places(found: dict[str, Any]) -> list[tuple[int, str, int]]:
    return [(item["rank"], item["member_id"], item["points"]) for item in found["items"]]


class TestLeaderboard:
    async def test_members_who_opted_in_by_points_earned_this_week(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)  # 1 point per 100 minor units
        await add_activity_rule(client, admin_key, type="review", name="Review", points=50)
        ann, bo, cy, di, ed = [await enrol(client, pos_key, email=f"m{n}@example.com") for n in range(5)]
        for member in (ann, bo, di, ed):
            assert (await opt_in(client, pos_key, member["id"]))["leaderboard_opt_in"] is True
        # Last week's points do not count this week.
        clock.set(START - timedelta(days=2))
        await earn(client, pos_key, ann["id"], 900_00)
        clock.set(START)
        await earn(client, pos_key, ann["id"], 100_00)
        await earn(client, pos_key, bo["id"], 300_00)
        await earn(client, pos_key, cy["id"], 500_00)  # never opted in
        await earn(client, pos_key, di["id"], 100_00)
        await record(client, pos_key, di["id"], "rv-1", type="review")
        await earn(client, pos_key, ed["id"], 100_00)
        # An adjustment is not earned.
        adjusted = await client.post(
            f"/v1/members/{ed['id']}/adjustments",
            json={"points": 1000, "reason": "Goodwill"},
            headers=bearer(admin_key),
        )
        assert adjusted.status_code in (200, 201), adjusted.text

        found = await board(client, pos_key, period="week")
        assert (found["period"], found["start"], found["end"]) == (
            "week",
            "2026-03-15T16:00:00Z",  # Monday 00:00 in Shanghai
            "2026-03-22T16:00:00Z",
        )
        tied = sorted([ann, ed], key=lambda m: uuid.UUID(m["id"]))  # a tie goes by member id
        assert places(found) == [
            (1, bo["id"], 300),
            (2, di["id"], 150),
            (3, tied[0]["id"], 100),
            (3, tied[1]["id"], 100),
        ]
        # No personal data: the card number masked, nothing else that names the member.
        for item in found["items"]:
            assert set(item) == {"rank", "member_id", "alias", "points"}
        assert found["items"][0]["alias"] == "••••••" + bo["member_number"][-4:]
        assert "@" not in str(found) and bo["member_number"] not in str(found)

        # Last week, asked for by an instant in it.
        earlier = await board(client, pos_key, period="week", **{"from": "2026-03-14T12:00:00Z"})
        assert places(earlier) == [(1, ann["id"], 900)]
        # A page at a time, ranks carried across pages.
        paged, cursor = [], None
        while True:
            page = await board(
                client, pos_key, period="week", limit=1, **({"cursor": cursor} if cursor else {})
            )
            paged += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert paged == found["items"]

    async def test_opting_out_refunds_and_the_month(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        ann, bo = [await enrol(client, pos_key) for _ in range(2)]
        for member in (ann, bo):
            await opt_in(client, pos_key, member["id"])
        clock.set(START - timedelta(days=10))  # 6 March: this month, an earlier week
        await earn(client, pos_key, ann["id"], 200_00, order_ref="ANN-1")
        clock.set(START)
        await earn(client, pos_key, bo["id"], 150_00)
        month = await board(client, pos_key, period="month")
        assert (month["start"], month["end"]) == ("2026-02-28T16:00:00Z", "2026-03-31T16:00:00Z")
        assert places(month) == [(1, ann["id"], 200), (2, bo["id"], 150)]
        # A refund takes back what the purchase earned, and the board with it.
        refunded = await client.post(
            "/v1/orders/ANN-1/refund",
            json={"amount": {"amount": 100_00, "currency": "CNY"}},
            headers=bearer(pos_key),
        )
        assert refunded.status_code == 200, refunded.text
        assert places(await board(client, pos_key, period="month")) == [
            (1, bo["id"], 150),
            (2, ann["id"], 100),
        ]
        await opt_in(client, pos_key, bo["id"], False)
        assert places(await board(client, pos_key, period="month")) == [(1, ann["id"], 100)]
        # A member who is not active is not shown.
        await client.patch(
            f"/v1/members/{ann['id']}", json={"status": "suspended"}, headers=bearer(admin_key)
        )
        assert (await board(client, pos_key, period="month"))["items"] == []

    async def test_the_month_begins_at_its_first_midnight_when_the_clocks_repeat_it(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """In Havana the clocks go back from 01:00 to 00:00 on the first Sunday of November, 1 November 2026:
        the month begins at the first of the two midnights, whichever of them `from` falls after."""
        await set_program(client, admin_key, timezone="America/Havana")
        ann = await enrol(client, pos_key)
        await opt_in(client, pos_key, ann["id"])
        clock.set(datetime(2026, 11, 1, 4, 15, tzinfo=UTC))  # 00:15 there, the first time
        await earn(client, pos_key, ann["id"], 150_00)
        clock.set(datetime(2026, 11, 1, 5, 30, tzinfo=UTC))  # 00:30 there, the second time
        for asked in (None, "2026-11-01T00:30:00-05:00", "2026-11-15T12:00:00-05:00"):
            month = await board(client, pos_key, period="month", **({} if asked is None else {"from": asked}))
            assert (month["start"], month["end"]) == ("2026-11-01T04:00:00Z", "2026-12-01T05:00:00Z"), asked
            assert places(month) == [(1, ann["id"], 150)], asked

    async def test_a_refund_takes_back_from_the_week_its_purchase_was_in(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        ann = await enrol(client, pos_key)
        await opt_in(client, pos_key, ann["id"])
        clock.set(START - timedelta(days=3))  # last week
        await earn(client, pos_key, ann["id"], 15_000, order_ref="OLD-1")
        clock.set(START)
        await earn(client, pos_key, ann["id"], 20_000)
        refunded = await client.post("/v1/orders/OLD-1/refund", json={"full": True}, headers=bearer(pos_key))
        assert refunded.status_code == 200, refunded.text
        assert places(await board(client, pos_key, period="week")) == [(1, ann["id"], 200)]
        last_week = (START - timedelta(days=3)).isoformat()
        assert places(await board(client, pos_key, period="week", **{"from": last_week})) == []

    async def test_a_receipt_synced_late_counts_in_the_week_it_was_made(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """An offline till sends last week's receipt this week with its `occurred_at`: the board ranks the
        purchases made in the week, so it is last week's (where a refund of it takes back from too), not
        this week's, where the member bought nothing."""
        await set_program(client, admin_key)
        ann, bo = [await enrol(client, pos_key) for _ in range(2)]
        for member in (ann, bo):
            await opt_in(client, pos_key, member["id"])
        clock.set(START - timedelta(days=3))  # last week
        await earn(client, pos_key, bo["id"], 100_00)
        clock.set(START)
        made = (START - timedelta(days=3)).isoformat()
        await earn(client, pos_key, ann["id"], 150_00, order_ref="LATE-1", occurred_at=made)
        await earn(client, pos_key, bo["id"], 50_00)

        assert places(await board(client, pos_key, period="week")) == [(1, bo["id"], 50)]
        last_week = {"from": made}
        assert places(await board(client, pos_key, period="week", **last_week)) == [
            (1, ann["id"], 150),
            (2, bo["id"], 100),
        ]
        refunded = await client.post("/v1/orders/LATE-1/refund", json={"full": True}, headers=bearer(pos_key))
        assert refunded.status_code == 200, refunded.text
        assert places(await board(client, pos_key, period="week", **last_week)) == [(1, bo["id"], 100)]
        assert places(await board(client, pos_key, period="week")) == [(1, bo["id"], 50)]

    async def test_a_refund_past_two_billion_points_is_counted_like_any_other(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """Ledger amounts are 64-bit; what a refund took back was read as a 32-bit integer on PostgreSQL, and
        the board and every points report answered 500 for the week that held it."""
        await set_program(client, admin_key)
        ann = await enrol(client, pos_key)
        await opt_in(client, pos_key, ann["id"])
        await earn(client, pos_key, ann["id"], 300_000_000_000, order_ref="BULK-1")  # 3,000,000,000 points
        await earn(client, pos_key, ann["id"], 20_000)
        refunded = await client.post("/v1/orders/BULK-1/refund", json={"full": True}, headers=bearer(pos_key))
        assert refunded.status_code == 200, refunded.text
        assert places(await board(client, pos_key, period="week")) == [(1, ann["id"], 200)]
        window = {"from": START.isoformat(), "to": (clock.now() + timedelta(seconds=1)).isoformat()}
        overview = await client.get("/v1/analytics/overview", params=window, headers=bearer(admin_key))
        assert overview.status_code == 200, overview.text
        figures = overview.json()["points"]
        assert (figures["issued"], figures["taken_back"]) == (3_000_000_200, 3_000_000_000)

    async def test_a_refund_takes_back_points_already_spent_and_a_later_settling_counts_once(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """Points of a refunded purchase the member had spent are owed (the refund's shortfall), not kept:
        they leave the board with the rest, and the refund that later settles what is owed takes no more."""
        await set_program(client, admin_key)
        ann, bo = [await enrol(client, pos_key) for _ in range(2)]
        for member in (ann, bo):
            await opt_in(client, pos_key, member["id"])
        await earn(client, pos_key, ann["id"], 100_000, order_ref="BIG-1")  # 1000 points
        await earn(client, pos_key, ann["id"], 50_000, order_ref="SMALL-1")  # 500 points
        await earn(client, pos_key, bo["id"], 80_000)  # 800 points
        spent = await client.post(
            f"/v1/members/{ann['id']}/redeem",
            json={"points": 1500, "order_ref": "GIFT-1"},
            headers=bearer(pos_key),
        )
        assert spent.status_code == 200, spent.text
        refunded = await client.post("/v1/orders/BIG-1/refund", json={"full": True}, headers=bearer(pos_key))
        assert (refunded.json()["points_taken_back"], refunded.json()["shortfall"]) == (0, 1000), (
            refunded.text
        )
        assert places(await board(client, pos_key, period="week")) == [
            (1, bo["id"], 800),
            (2, ann["id"], 500),
        ]
        # Returning the gift gives its points back, and they settle what BIG-1 still owed.
        settled = await client.post("/v1/orders/GIFT-1/refund", json={"full": True}, headers=bearer(pos_key))
        assert settled.json()["shortfall_settled"] == 1000, settled.text
        assert places(await board(client, pos_key, period="week")) == [
            (1, bo["id"], 800),
            (2, ann["id"], 500),
        ]

    async def test_a_refund_takes_back_points_that_expired_since(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)  # points expire 12 months after they are earned
        ann = await enrol(client, pos_key)
        await opt_in(client, pos_key, ann["id"])
        await earn(client, pos_key, ann["id"], 40_000, order_ref="OLD-1")  # 400 points
        await earn(client, pos_key, ann["id"], 10_000)  # 100 points
        clock.advance(timedelta(days=400))
        refunded = await client.post("/v1/orders/OLD-1/refund", json={"full": True}, headers=bearer(pos_key))
        assert (refunded.json()["points_taken_back"], refunded.json()["already_expired"]) == (0, 400)
        that_week = {"from": START.isoformat()}
        assert places(await board(client, pos_key, period="week", **that_week)) == [(1, ann["id"], 100)]

    async def test_pages_show_what_one_page_shows(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        ann, bo, cy, di = [await enrol(client, pos_key) for _ in range(4)]
        for member in (ann, bo, cy, di):
            await opt_in(client, pos_key, member["id"])
        clock.set(START)
        await earn(client, pos_key, ann["id"], 30_000)
        await earn(client, pos_key, di["id"], 5_000)
        await earn(client, pos_key, bo["id"], 20_000, order_ref="BO-1")
        await earn(client, pos_key, cy["id"], 10_000, order_ref="CY-1")
        for ref in ("BO-1", "CY-1"):  # all they earned this week, taken back
            assert (
                await client.post(f"/v1/orders/{ref}/refund", json={"full": True}, headers=bearer(pos_key))
            ).status_code == 200
        whole = await board(client, pos_key, period="week")
        assert places(whole) == [(1, ann["id"], 300), (2, di["id"], 50)]
        paged: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = await board(
                client, pos_key, period="week", limit=1, **({"cursor": cursor} if cursor else {})
            )
            paged += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert paged == whole["items"]

    async def test_a_pages_cursor_holds_no_full_card_number(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """The board masks card numbers because apps and screens show it: the `next_cursor` an app is handed
        for the next page (plain base64url) must not spell out the card number the alias hides."""
        await set_program(client, admin_key)
        members = [await enrol(client, pos_key) for _ in range(3)]
        for member, amount in zip(members, (30_000, 20_000, 20_000), strict=True):
            await opt_in(client, pos_key, member["id"])
            await earn(client, pos_key, member["id"], amount)
        whole = await board(client, pos_key, period="week")
        numbers = {m["member_number"] for m in members}
        cursor, paged = None, []
        while True:
            page = await board(
                client, pos_key, period="week", limit=1, **({"cursor": cursor} if cursor else {})
            )
            paged += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            assert [n for n in numbers if n.encode() in decoded] == [], page
        assert paged == whole["items"]
        assert [item["rank"] for item in paged] == [1, 2, 2]

    async def test_a_cursor_of_another_board_is_422(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """A cursor carries the last place shown and its rank on its board: on the week's board, the month's
        cursor (an app switching tabs) or last week's (the week turned between two pages) numbered the week's
        leader 4th, and left out whoever earned more than the cursor's points."""
        await set_program(client, admin_key)
        members = [await enrol(client, pos_key) for _ in range(4)]
        clock.set(START - timedelta(days=10))  # this month, an earlier week
        for n, member in enumerate(members, start=1):
            await opt_in(client, pos_key, member["id"])
            await earn(client, pos_key, member["id"], n * 100_00)
        clock.set(START)
        for n, member in enumerate(members[:2], start=1):
            await earn(client, pos_key, member["id"], n * 50_00)
        month = await board(client, pos_key, period="month", limit=3)
        last_week = await board(client, pos_key, period="week", limit=3, **{"from": "2026-03-06T12:00:00Z"})
        for other in (month, last_week):
            response = await client.get(
                "/v1/leaderboard",
                params={"period": "week", "cursor": other["next_cursor"]},
                headers=bearer(pos_key),
            )
            assert (response.status_code, response.json()["code"]) == (422, "validation_error"), response.text
            assert [e["field"] for e in response.json()["errors"]] == ["cursor"]
        # Its own board goes on from it.
        rest = await board(client, pos_key, period="month", cursor=month["next_cursor"])
        assert places(rest) == [(4, members[0]["id"], 150)]

    async def test_bad_queries_are_422(self, client: httpx.AsyncClient, pos_key: str) -> None:
        for params in (
            {"period": "year"},
            {"limit": 0},
            {"limit": 201},
            {"cursor": "not-one"},
            {"from": "yesterday"},
        ):
            response = await client.get("/v1/leaderboard", params=params, headers=bearer(pos_key))
            assert (response.status_code, response.json()["code"]) == (422, "validation_error"), params

    @pytest.mark.parametrize(
        ("rank", "place"),
        [(2**63 - 1, 2**63 - 1), (2**62 + 1, 2**62 + 1), (-5, -5), (0, 0), (5, 2)],
        ids=["at the limit", "past a sane range", "negative", "none shown yet", "ranked below its place"],
    )
    async def test_a_forged_cursor_is_422(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, rank: int, place: int
    ) -> None:
        """A cursor carries the last place shown and its rank: one this service did not write is refused, not
        a 500 (a place that overflows the next cursor) or ranks made up by whoever forged it."""
        await set_program(client, admin_key)
        for amount in (30_000, 20_000, 10_000):
            member = await enrol(client, pos_key)
            await opt_in(client, pos_key, member["id"])
            await earn(client, pos_key, member["id"], amount)
        # This board's cursor, its place and rank forged.
        given = (await board(client, pos_key, period="week", limit=1))["next_cursor"]
        points, member_id, _, _, scope = decode_key(given, (int, uuid.UUID, int, int, int))
        cursor = encode_key((points, member_id, rank, place, scope))
        response = await client.get(
            "/v1/leaderboard", params={"limit": 1, "cursor": cursor}, headers=bearer(pos_key)
        )
        assert (response.status_code, response.json()["code"]) == (422, "validation_error"), response.text
        assert "cursor" in str(response.json()["errors"])

    async def test_opt_in_is_off_by_default_and_cannot_be_null(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        assert member["leaderboard_opt_in"] is False
        response = await client.patch(
            f"/v1/members/{member['id']}", json={"leaderboard_opt_in": None}, headers=bearer(pos_key)
        )
        assert response.status_code == 422
