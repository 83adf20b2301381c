"""Edge cases of tiers a user meets: a review day with more members due than one batch, an override that ran
out before the review job came, a member who had no tier yet, and bad version numbers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.tiers.membership import review_tiers
from loyalty_api.tiers.redating import redate_window_ends
from tests.builders import add_tier, enrol
from tests.conftest import START, bearer
from tests.inspect_db import rows
from tests.points.helpers import earn, set_program
from tests.tiers.test_qualification import (
    KEPT_2026,
    KEPT_2027,
    history,
    iso,
    put_override,
    standard_ladder,
    tier_of,
)


@pytest.fixture
async def ladder(client: httpx.AsyncClient, admin_key: str) -> None:
    await set_program(client, admin_key)
    await standard_ladder(client, admin_key)


@pytest.mark.usefixtures("ladder")
class TestReviewDay:
    async def test_one_run_reviews_every_member_due_not_just_one_batch(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        # On 1 January + grace every holder of a calendar-year tier is due at once; the worker runs the job
        # every ten minutes, so one run must get through all of them.
        members = [await enrol(client, pos_key) for _ in range(5)]
        for member in members:
            await earn(client, pos_key, member["id"], 100_000)
        clock.set(KEPT_2026)
        units: UnitsOfWork = app.state.units

        assert await review_tiers(units, batch=2) == 5

        for member in members:  # each spent silver's threshold in 2026: renewed for 2027
            status = await tier_of(client, pos_key, member["id"])
            assert (status["tier"]["code"], status["kept_until"]) == ("silver", iso(KEPT_2027))
        assert await review_tiers(units, batch=2) == 0


@pytest.mark.usefixtures("ladder")
class TestOverrideThatRanOut:
    async def test_a_requalifying_purchase_after_the_end_ends_the_override(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        member = await enrol(client, pos_key)
        until = START + timedelta(days=10)
        await put_override(client, admin_key, member["id"], "silver", until, "trial")
        clock.set(until + timedelta(hours=1))  # the override is over; the review job has not run yet
        assert (await earn(client, pos_key, member["id"], 100_000))["tier"]["code"] == "silver"

        status = await tier_of(client, pos_key, member["id"])
        assert (status["tier"]["code"], status["kept_until"], status["override_until"]) == (
            "silver",
            iso(KEPT_2026),
            None,
        )
        assert status["keep"] is not None and status["keep"]["tier"]["code"] == "silver"

        # At its review the member is judged on their year like anyone else, not as an override that ended.
        clock.set(KEPT_2026)
        assert await review_tiers(app.state.units) == 1
        assert (await history(client, pos_key, member["id"]))[0]["change"] == "renewal"

    async def test_the_tier_view_does_not_call_an_ended_override_current(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)
        until = START + timedelta(days=10)
        answered = await put_override(client, admin_key, member["id"], "silver", until, "trial")
        assert answered["keep"] is None
        clock.set(until + timedelta(hours=1))
        status = await tier_of(client, pos_key, member["id"])
        assert status["keep"] is not None  # the review is due now: what keeps the tier matters again

    async def test_keep_counts_what_the_review_of_an_ended_override_counts(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        member = await enrol(client, pos_key)
        until = START + timedelta(days=80)
        await put_override(client, admin_key, member["id"], "silver", until, "trial")
        clock.set(START + timedelta(days=70))
        await earn(client, pos_key, member["id"], 100_000)  # silver's bar, under the override: no move
        clock.set(until + timedelta(hours=1))  # the override is over; the review job has not run yet

        status = await tier_of(client, pos_key, member["id"])
        # The review puts the member where they qualify now: 2026's spend, to now, has reached silver's bar.
        assert status["keep"] == {
            "tier": {"code": "silver", "name": "银卡", "rank": 1},
            "metric": "spend",
            "window_start": "2025-12-31T16:00:00Z",
            "value": 100_000,
            "threshold": 100_000,
            "remaining": 0,
            "by": iso(until),  # the review places the member as of the override's end
        }
        query = f'{{ loyaltyMember(id: "{member["id"]}") {{ tierStatus {{ keep {{ value remaining }} }} }} }}'
        answer = await client.post("/graphql", json={"query": query}, headers=bearer(pos_key))
        keep = answer.json()["data"]["loyaltyMember"]["tierStatus"]["keep"]
        assert keep == {"value": 100_000, "remaining": 0}  # GraphQL's figures are REST's

        assert await review_tiers(app.state.units) == 1
        status = await tier_of(client, pos_key, member["id"])
        assert (status["tier"]["code"], status["kept_until"]) == ("silver", iso(KEPT_2026))

    async def test_keep_of_an_override_that_ended_before_the_year_turned_counts_that_year(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """The worker was down when the override ended (20 December) and is still down in January: the
        review, when it comes, places the member as of the override's end, on 2026's spend. keep must count
        that, not 2027's window to now, which told a member the review would keep on silver that they still
        needed all of silver's bar."""
        member = await enrol(client, pos_key)
        until = datetime(2026, 12, 19, 16, 0, tzinfo=UTC)  # 20 December in Shanghai
        await put_override(client, admin_key, member["id"], "silver", until, "trial")
        clock.set(datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
        await earn(client, pos_key, member["id"], 100_000)  # silver's bar, under the override: no move
        clock.set(datetime(2027, 1, 5, 2, 0, tzinfo=UTC))  # the review job has not run since

        status = await tier_of(client, pos_key, member["id"])
        assert status["keep"] == {
            "tier": {"code": "silver", "name": "银卡", "rank": 1},
            "metric": "spend",
            "window_start": "2025-12-31T16:00:00Z",
            "value": 100_000,
            "threshold": 100_000,
            "remaining": 0,
            "by": iso(until),
        }

        assert await review_tiers(app.state.units) == 1
        assert (await tier_of(client, pos_key, member["id"]))["tier"]["code"] == "silver"


class TestMemberWithoutATier:
    async def test_the_earn_that_gives_a_tier_says_so(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)  # enrolled before the programme had a ladder
        assert member["tier"] is None
        await standard_ladder(client, admin_key)

        result = await earn(client, pos_key, member["id"], 100_000)

        assert (result["tier"]["code"], result["tier_changed"]) == ("silver", True)


class TestLadderVersionInput:
    @pytest.mark.parametrize("path", ["/v1/tier-versions/99999999999", "/v1/tier-versions/0"])
    async def test_a_version_number_out_of_range_is_422(
        self, client: httpx.AsyncClient, admin_key: str, path: str
    ) -> None:
        response = await client.get(path, headers=bearer(admin_key))
        assert (response.status_code, response.json()["code"]) == (422, "validation_error")

    @pytest.mark.parametrize("cursor", ["²", "99999999999", "-1", " 1"])
    async def test_a_cursor_this_list_never_gave_is_422(
        self, client: httpx.AsyncClient, admin_key: str, cursor: str
    ) -> None:
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key)
        response = await client.get("/v1/tier-versions", params={"cursor": cursor}, headers=bearer(admin_key))
        assert (response.status_code, response.json()["code"]) == (422, "validation_error")

    async def test_the_cursor_it_gave_pages_on(self, client: httpx.AsyncClient, admin_key: str) -> None:
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key)
        first = (await client.get("/v1/tier-versions?limit=2", headers=bearer(admin_key))).json()
        assert [v["version"] for v in first["items"]] == [3, 2]
        rest = await client.get(
            "/v1/tier-versions",
            params={"limit": 2, "cursor": first["next_cursor"]},
            headers=bearer(admin_key),
        )
        assert [v["version"] for v in rest.json()["items"]] == [1]


@pytest.mark.usefixtures("ladder")
class TestLadderCache:
    async def test_a_change_to_the_ladder_applies_to_the_next_earn(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)  # silver now; the ladder is cached
        response = await client.put(
            "/v1/tiers/silver",
            json={
                "name": "银卡",
                "rank": 1,
                "metric": "spend",
                "window": "calendar_year",
                "threshold": 100_000,
                "points_multiplier": "3",
                "grace_days": 30,
            },
            headers=bearer(admin_key),
        )
        assert response.status_code == 200, response.text
        result = await earn(client, pos_key, member["id"], 10_000)
        assert [(line["kind"], line["points"]) for line in result["breakdown"]] == [
            ("base_rate", 100),
            ("tier_multiplier", 200),
        ]


class TestLadderReordered:
    async def test_members_left_on_a_tier_that_is_no_longer_the_entry_get_a_review_date(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key)
        member = await enrol(client, pos_key)
        assert (await tier_of(client, pos_key, member["id"]))["kept_until"] is None
        # The operator moves the old entry tier to the top: silver becomes everyone's start.
        body = {"name": "普通会员", "rank": 9, "metric": "spend", "window": "calendar_year", "threshold": 0}
        assert (await client.put("/v1/tiers/member", json=body, headers=bearer(admin_key))).status_code == 200
        status = await tier_of(client, pos_key, member["id"])
        assert (status["tier"]["code"], status["kept_until"]) == ("member", "2026-12-31T16:00:00Z")

    async def test_a_member_under_an_override_when_it_changes_gets_the_same_date_for_afterwards(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """The entry tier held before an override is dated like everyone's when it stops being the entry (by
        the worker, which runs every few seconds), or the override's end would put the member back on it with
        no review date, never to be reviewed."""
        await set_program(client, admin_key)
        await add_tier(client, admin_key, "member", rank=10)
        await add_tier(client, admin_key, "silver", rank=20, threshold=100_000)
        held, peer = await enrol(client, pos_key), await enrol(client, pos_key)
        override = {"tier": "silver", "until": "2026-03-26T10:00:00Z", "reason": "trial"}
        path = f"/v1/members/{held['id']}/tier/override"
        assert (await client.put(path, json=override, headers=bearer(admin_key))).status_code == 200
        await add_tier(client, admin_key, "basic", rank=0)  # a new entry tier, and the old one needs spend
        body = {
            "name": "Member",
            "rank": 10,
            "metric": "spend",
            "window": "calendar_year",
            "threshold": 50_000,
        }
        assert (await client.put("/v1/tiers/member", json=body, headers=bearer(admin_key))).status_code == 200
        assert await redate_window_ends(app.state.units) == 2  # the end held's override keeps, and peer's
        clock.set(datetime(2026, 3, 27, tzinfo=UTC))
        await review_tiers(app.state.units)
        ended, dated = await tier_of(client, pos_key, held["id"]), await tier_of(client, pos_key, peer["id"])
        assert (ended["tier"]["code"], ended["override_until"]) == ("member", None)
        assert ended["kept_until"] == dated["kept_until"] == "2026-12-31T16:00:00Z"
        clock.set(datetime(2027, 6, 1, tzinfo=UTC))  # neither spent anything: both are reviewed down
        await review_tiers(app.state.units)
        assert [(await tier_of(client, pos_key, m["id"]))["tier"]["code"] for m in (held, peer)] == [
            "basic"
        ] * 2


@pytest.mark.usefixtures("ladder")
class TestErasedMembersOnATier:
    async def test_a_ladder_change_after_an_erasure_leaves_the_review_job_running(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        erased = await enrol(client, pos_key)
        await earn(client, pos_key, erased["id"], 100_000)  # silver
        gone = await client.post(f"/v1/members/{erased['id']}/erase", headers=bearer(admin_key))
        assert gone.status_code == 200, gone.text
        # A change to the ladder, with an erased member on silver and no review date (the change dates nobody;
        # the worker dates members who have none, erased members left out).
        await add_tier(client, admin_key, "platinum", rank=3, threshold=9_000_000, grace_days=30)
        others = [await enrol(client, pos_key) for _ in range(3)]
        for member in others:
            await earn(client, pos_key, member["id"], 100_000)  # silver, kept until 2027-01-30
        clock.set(KEPT_2026)
        assert await review_tiers(app.state.units) == 3
        for member in others:  # reviewed: 2026's spend keeps silver through 2027
            assert (await tier_of(client, pos_key, member["id"]))["kept_until"] == iso(KEPT_2027)

    async def test_an_erased_member_carries_no_override(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """Erasure left the override's end and the tier earned before it (and that window's end) on the row:
        the review's walk of the overrides that ended read the member from the overrides' index only to pass
        them by, run after run, and nobody's row named a tier earned."""
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)  # silver
        await put_override(client, admin_key, member["id"], "gold", datetime(2026, 6, 1, tzinfo=UTC), "promo")
        gone = await client.post(f"/v1/members/{member['id']}/erase", headers=bearer(admin_key))
        assert gone.status_code == 200, gone.text
        found = await rows(
            app,
            "SELECT tier_window_end, tier_override_until, tier_earned_id, tier_earned_window_end"
            " FROM members WHERE id = :member",
            member=uuid.UUID(member["id"]),
        )
        assert found == [
            {
                "tier_window_end": None,
                "tier_override_until": None,
                "tier_earned_id": None,
                "tier_earned_window_end": None,
            }
        ]

    async def test_a_tier_only_erased_members_held_can_be_deleted(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 500_000)  # gold
        kept = await enrol(client, pos_key)
        await earn(client, pos_key, kept["id"], 100_000)  # silver
        await client.post(f"/v1/members/{member['id']}/erase", headers=bearer(admin_key))
        assert (await client.delete("/v1/tiers/gold", headers=bearer(admin_key))).status_code == 204
        in_use = await client.delete("/v1/tiers/silver", headers=bearer(admin_key))
        assert (in_use.status_code, in_use.json()["members"]) == (409, 1)  # a member an operator can move
