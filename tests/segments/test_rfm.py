"""RFM: scores are quintiles among the members who bought in the window (members alike share a rank),
segments follow from recency and frequency; a hand-computed set of ten members checks every score and
segment."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.members.models import Segment
from loyalty_api.segments.rules import segment_of
from loyalty_api.segments.service import compute_segments
from tests.builders import enrol
from tests.conftest import bearer, units_of
from tests.inspect_db import rows
from tests.partners.helpers import iso
from tests.points.helpers import earn, set_program

# Days before the run of each member's purchases, how many, and the amount of each (minor units).
PURCHASES = [(300, 2, 9_000), (250, 6, 500), (200, 3, 1_100), (150, 5, 700), (100, 10, 100),
             (80, 4, 5_000), (60, 7, 2_000), (40, 8, 300), (20, 1, 40_000), (10, 9, 1_500)]  # fmt: skip
# Worked out by hand: R by last purchase, F by count, M by spend (n × amount), two members per fifth.
EXPECTED = [
    (1, 1, 4, "hibernating"),
    (1, 3, 2, "at_risk"),
    (2, 2, 2, "hibernating"),
    (2, 3, 3, "at_risk"),
    (3, 5, 1, "loyal"),
    (3, 2, 5, "needs_attention"),
    (4, 4, 4, "champions"),
    (4, 4, 1, "champions"),
    (5, 1, 5, "potential"),
    (5, 5, 3, "champions"),
]


def test_segment_rules() -> None:
    assert segment_of(0, 0) is Segment.lost
    assert segment_of(5, 5) is Segment.champions
    assert segment_of(3, 4) is Segment.loyal
    assert segment_of(4, 3) is Segment.potential
    assert segment_of(2, 3) is Segment.at_risk
    assert segment_of(1, 2) is Segment.hibernating
    assert segment_of(3, 3) is Segment.needs_attention


async def scores(app: FastAPI, member_id: str) -> tuple[int, int, int, str] | None:
    found = await rows(
        app,
        "SELECT recency, frequency, monetary, segment FROM member_rfm WHERE member_id = :m",
        m=uuid.UUID(member_id),
    )
    return (
        None
        if not found
        else (found[0]["recency"], found[0]["frequency"], found[0]["monetary"], found[0]["segment"])
    )


class TestScores:
    async def test_a_hand_computed_set(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)  # a 365-day window
        run_at = clock.now() + timedelta(days=400)
        members = [(await enrol(client, pos_key))["id"] for _ in PURCHASES]
        old_buyer = (await enrol(client, pos_key))["id"]
        closed = (await enrol(client, pos_key))["id"]
        clock.set(run_at - timedelta(days=399))
        await earn(client, pos_key, old_buyer, 10_000)  # before the window
        await earn(client, pos_key, closed, 10_000)
        for member, (days, count, amount) in sorted(
            zip(members, PURCHASES, strict=True), key=lambda p: -p[1][0]
        ):
            clock.set(run_at - timedelta(days=days))
            for _ in range(count):
                await earn(client, pos_key, member, amount)
        clock.set(run_at - timedelta(days=1))
        await earn(client, pos_key, closed, 10_000)
        closing = await client.patch(
            f"/v1/members/{closed}", json={"status": "closed"}, headers=bearer(admin_key)
        )
        assert closing.status_code == 200, closing.text
        clock.set(run_at)

        assert await compute_segments(units_of(app)) == 10
        assert [await scores(app, m) for m in members] == EXPECTED
        # Nothing changed since: a second run writes nothing (`loyalty-api jobs` runs a job until it says 0).
        assert await compute_segments(units_of(app)) == 0
        assert await scores(app, old_buyer) is None and await scores(app, closed) is None

        counts = await client.get("/v1/segments", headers=bearer(admin_key))
        assert counts.status_code == 200, counts.text
        assert counts.json()["counts"] == {
            "champions": 3, "loyal": 1, "potential": 1, "at_risk": 2, "hibernating": 2,
            "needs_attention": 1, "lost": 0,
        }  # fmt: skip
        window = {"from": iso(run_at - timedelta(days=1)), "to": iso(run_at)}
        overview = await client.get("/v1/analytics/overview", params=window, headers=bearer(admin_key))
        assert overview.json()["members_by_segment"] == counts.json()["counts"]
        listed = await client.get(
            "/v1/members", params={"segment": "champions", "limit": 200}, headers=bearer(admin_key)
        )
        assert {m["id"] for m in listed.json()["items"]} == {members[6], members[7], members[9]}

        # Seventy days on, the first member's purchases have left the window: lost, every score 0.
        clock.set(run_at + timedelta(days=70))
        assert await compute_segments(units_of(app)) >= 1
        assert await scores(app, members[0]) == (0, 0, 0, "lost")
        assert await compute_segments(units_of(app)) == 0

    async def test_with_fewer_than_five_buyers_the_top_one_scores_five(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        regular = (await enrol(client, pos_key))["id"]
        for _ in range(5):
            await earn(client, pos_key, regular, 10_000)
        clock.advance(timedelta(hours=1))
        await compute_segments(units_of(app))
        assert await scores(app, regular) == (5, 5, 5, "champions")  # not hibernating

        once = (await enrol(client, pos_key))["id"]
        clock.advance(timedelta(days=30))
        await earn(client, pos_key, once, 1_000)  # more recent, fewer purchases, less spent
        clock.advance(timedelta(hours=1))
        await compute_segments(units_of(app))
        assert await scores(app, once) == (5, 3, 3, "potential")
        assert await scores(app, regular) == (3, 5, 5, "loyal")

    async def test_only_operators_read_segments(
        self, client: httpx.AsyncClient, pos_key: str, admin_key: str
    ) -> None:
        assert (await client.get("/v1/segments", headers=bearer(pos_key))).status_code == 403
        assert (await client.get("/v1/segments", headers=bearer(admin_key))).status_code == 200

    async def test_an_unknown_segment_is_a_422(self, client: httpx.AsyncClient, admin_key: str) -> None:
        bad = await client.get("/v1/members", params={"segment": "vip"}, headers=bearer(admin_key))
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "segment"


class TestCounts:
    async def test_a_closed_member_is_in_no_segment_as_in_no_member_figure(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        start = clock.now()
        stays, leaves, erased = [(await enrol(client, pos_key))["id"] for _ in range(3)]
        for member in (stays, leaves, erased):
            await earn(client, pos_key, member, 10_000)
        clock.advance(timedelta(hours=1))
        await compute_segments(units_of(app))

        async def counts() -> tuple[int, dict[str, int], dict[str, int]]:
            window = {"from": iso(start), "to": iso(clock.now())}
            overview = await client.get("/v1/analytics/overview", params=window, headers=bearer(admin_key))
            segments = await client.get("/v1/segments", headers=bearer(admin_key))
            assert overview.status_code == segments.status_code == 200, (overview.text, segments.text)
            return (
                overview.json()["members"],
                overview.json()["members_by_segment"],
                segments.json()["counts"],
            )

        closing = await client.patch(
            f"/v1/members/{leaves}", json={"status": "closed"}, headers=bearer(admin_key)
        )
        assert closing.status_code == 200, closing.text
        assert (
            await client.post(f"/v1/members/{erased}/erase", headers=bearer(admin_key))
        ).status_code == 200
        # Before the job runs again: the closed member's scores are still there, and count nowhere.
        members, by_segment, listed = await counts()
        assert members == sum(by_segment.values()) == 2 and by_segment == listed
        # The job marks the closed member lost, counted in no figure; the erased member stays in the figures
        # (as `members` keeps them), scored from their orders as before: not lost for having been erased.
        clock.advance(timedelta(hours=1))
        await compute_segments(units_of(app))
        members, by_segment, listed = await counts()
        assert members == sum(by_segment.values()) == 2 and by_segment == listed
        assert by_segment["lost"] == 0
        assert (await scores(app, leaves), await scores(app, erased)) == (
            (0, 0, 0, "lost"),
            await scores(app, stays),
        )

    async def test_an_erasure_moves_no_segment(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        """An erasure moves no figure (README), but the job stopped scoring an erased member: the run after
        it made them `lost` (yesterday's best customer) and ranked the others among fewer buyers. Their
        anonymous orders are scored as anyone's: they turn lost only once they have not bought in the
        window, as everyone does."""
        await set_program(client, admin_key)
        members = [(await enrol(client, pos_key))["id"] for _ in range(3)]
        for n, member in enumerate(members):  # each later, more often and more than the one before
            for _ in range(n + 1):
                await earn(client, pos_key, member, 10_000 * (n + 1))
            clock.advance(timedelta(days=1))
        await compute_segments(units_of(app))

        async def figures() -> tuple[list[tuple[int, int, int, str] | None], dict[str, int]]:
            segments = await client.get("/v1/segments", headers=bearer(admin_key))
            assert segments.status_code == 200, segments.text
            return [await scores(app, m) for m in members], segments.json()["counts"]

        before = await figures()
        assert before[0][2] == (5, 5, 5, "champions")
        erased = await client.post(f"/v1/members/{members[2]}/erase", headers=bearer(admin_key))
        assert erased.status_code == 200, erased.text
        clock.advance(timedelta(hours=1))
        await compute_segments(units_of(app))

        assert await figures() == before
        clock.advance(timedelta(days=400))
        await compute_segments(units_of(app))
        assert {score[3] for score in (await figures())[0] if score is not None} == {"lost"}


class TestTies:
    async def test_members_who_bought_alike_score_alike(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        members = [(await enrol(client, pos_key))["id"] for _ in range(10)]
        for member in members:  # one purchase each, of one amount, a day apart
            await earn(client, pos_key, member, 1_000)
            clock.advance(timedelta(days=1))
        twin = (await enrol(client, pos_key))["id"]
        clock.advance(timedelta(days=-1))
        await earn(client, pos_key, twin, 1_000)  # bought as the last of them did, at the same instant
        clock.advance(timedelta(days=1))

        await compute_segments(units_of(app))
        found = [await scores(app, m) for m in members]
        # All eleven bought as often and spent as much: they share the middle of places 1 to 11, ⌈5 × 6 ÷ 11⌉
        # = 3 (by member id, some of them once scored 1 and others 5).
        assert {(f, m) for _, f, m, _ in filter(None, found)} == {(3, 3)}
        # Ranked k of eleven, R = ⌈5k ÷ 11⌉; the twin and the last share places 10 and 11: ⌈5 × 10.5 ÷ 11⌉.
        assert [r for r, _, _, _ in filter(None, found)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
        assert await scores(app, twin) == found[-1] == (5, 3, 3, "potential")
        counts = (await client.get("/v1/segments", headers=bearer(admin_key))).json()["counts"]
        assert (counts["champions"], counts["potential"], counts["at_risk"]) == (0, 5, 4)

    async def test_two_who_bought_alike_score_alike_and_high(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        both = [(await enrol(client, pos_key))["id"] for _ in range(2)]
        for member in both:
            await earn(client, pos_key, member, 2_500)
        clock.advance(timedelta(hours=1))
        await compute_segments(units_of(app))
        # Places 1 and 2 of two: ⌈5 × 1.5 ÷ 2⌉ = 4 each (the first of them gave 3, the last 5).
        assert [await scores(app, m) for m in both] == [(4, 4, 4, "champions")] * 2

    async def test_the_many_who_bought_most_often_score_high_and_the_few_once_low(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        frequent = [(await enrol(client, pos_key))["id"] for _ in range(8)]
        once = [(await enrol(client, pos_key))["id"] for _ in range(2)]
        for member in frequent:
            for _ in range(3):
                await earn(client, pos_key, member, 1_000)
        for member in once:
            await earn(client, pos_key, member, 1_000)
        clock.advance(timedelta(hours=1))
        await compute_segments(units_of(app))
        # Eight of ten bought three times, two once: the eight hold places 3 to 10, ⌈5 × 6.5 ÷ 10⌉ = 4 (the
        # first of them gave 2); the two places 1 and 2, ⌈5 × 1.5 ÷ 10⌉ = 1.
        assert {f for _, f, _, _ in filter(None, [await scores(app, m) for m in frequent])} == {4}
        assert {f for _, f, _, _ in filter(None, [await scores(app, m) for m in once])} == {1}

    async def test_a_crowd_who_bought_once_scores_low(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        once = [(await enrol(client, pos_key))["id"] for _ in range(8)]
        frequent = [(await enrol(client, pos_key))["id"] for _ in range(2)]
        for member in once:
            await earn(client, pos_key, member, 1_000)
        for member in frequent:
            for _ in range(3):
                await earn(client, pos_key, member, 1_000)
        clock.advance(timedelta(hours=1))
        await compute_segments(units_of(app))
        # Most buyers buy once: places 1 to 8 of ten, ⌈5 × 4.5 ÷ 10⌉ = 3, not 4 (loyal) as the last of their
        # places gave; the two who bought three times hold 9 and 10: 5.
        assert {f for _, f, _, _ in filter(None, [await scores(app, m) for m in once])} == {3}
        assert {f for _, f, _, _ in filter(None, [await scores(app, m) for m in frequent])} == {5}


class TestAMembersSegment:
    async def test_reads_the_segment_and_scores_the_job_left(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        regular = (await enrol(client, pos_key))["id"]
        path = f"/v1/members/{regular}/segment"
        unscored = await client.get(path, headers=bearer(admin_key))
        assert unscored.status_code == 200, unscored.text
        assert unscored.json() == {"member_id": regular, "segment": None, "scores": None, "computed_at": None}

        for _ in range(5):
            await earn(client, pos_key, regular, 10_000)
        bought_at = clock.now()
        clock.advance(timedelta(hours=1))
        await compute_segments(units_of(app))
        found = (await client.get(path, headers=bearer(admin_key))).json()
        assert (found["segment"], found["computed_at"]) == ("champions", iso(clock.now()))
        assert found["scores"] == {
            "recency": 5,
            "frequency": 5,
            "monetary": 5,
            "last_purchase_at": iso(bought_at),
            "purchases": 5,
            "spend": {"amount": 50_000, "currency": "CNY"},
        }
        assert found["segment"] == (await scores(app, regular) or ())[3]

    async def test_no_member_is_404_and_only_operators_read_it(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        missing = await client.get(f"/v1/members/{uuid.uuid4()}/segment", headers=bearer(admin_key))
        assert (missing.status_code, missing.json()["code"]) == (404, "member_not_found")
        member = (await enrol(client, pos_key))["id"]
        till = await client.get(f"/v1/members/{member}/segment", headers=bearer(pos_key))
        assert (till.status_code, till.json()["code"]) == (403, "scope_not_allowed")
