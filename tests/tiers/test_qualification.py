"""A member's tier: upgrade in the earn that qualifies, windows, refunds, review after window and grace,
overrides, and the rules of the time explaining past changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.tiers.membership import review_tiers
from tests.builders import add_tier, enrol, unique_phone
from tests.conftest import START, bearer
from tests.inspect_db import events
from tests.points.helpers import cny, earn, set_program

# Kept for the rest of the calendar year in Shanghai, plus 30 days of grace.
KEPT_2026 = datetime(2027, 1, 30, 16, 0, tzinfo=UTC)
KEPT_2027 = datetime(2028, 1, 30, 16, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# A tier in every reply and payload: code, name and rank.
MEMBER = {"code": "member", "name": "普通会员", "rank": 0}
SILVER = {"code": "silver", "name": "银卡", "rank": 1}
GOLD = {"code": "gold", "name": "金卡", "rank": 2}


async def standard_ladder(client: httpx.AsyncClient, admin_key: str, **silver: Any) -> None:
    await add_tier(client, admin_key, "member", rank=0, name="普通会员")
    await add_tier(
        client,
        admin_key,
        "silver",
        rank=1,
        name="银卡",
        **({"threshold": 100_000, "points_multiplier": "1.2", "grace_days": 30} | silver),
    )
    await add_tier(
        client,
        admin_key,
        "gold",
        rank=2,
        name="金卡",
        threshold=500_000,
        points_multiplier="1.5",
        grace_days=30,
    )


@pytest.fixture
async def ladder(client: httpx.AsyncClient, admin_key: str) -> None:
    await set_program(client, admin_key)
    await standard_ladder(client, admin_key)


async def tier_of(client: httpx.AsyncClient, key: str, member_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/members/{member_id}/tier", headers=bearer(key))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def history(client: httpx.AsyncClient, key: str, member_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/members/{member_id}/tier/history", headers=bearer(key))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def put_override(
    client: httpx.AsyncClient, admin_key: str, member_id: str, tier: str, until: datetime, reason: str
) -> dict[str, Any]:
    """Put the member on `tier` by hand until `until`; the member's tier as the answer gives it."""
    response = await client.put(
        f"/v1/members/{member_id}/tier/override",
        json={"tier": tier, "until": iso(until), "reason": reason},
        headers=bearer(admin_key),
    )
    assert response.status_code == 200, response.text
    answered: dict[str, Any] = response.json()
    return answered


async def review(app: FastAPI) -> int:
    units: UnitsOfWork = app.state.units
    return await review_tiers(units)


@pytest.mark.usefixtures("ladder")
class TestUpgrade:
    async def test_the_earn_that_crosses_the_threshold_upgrades_in_its_reply(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        first = await earn(client, pos_key, member["id"], 60_000)
        assert (first["tier"], first["tier_changed"]) == (MEMBER, False)
        second = await earn(client, pos_key, member["id"], 50_000)
        assert (second["tier"], second["tier_changed"]) == (SILVER, True)
        assert second["points_earned"] == 500  # the qualifying purchase earns at the tier it was made on

        [event] = await events(app, "tier.upgraded")
        assert event["payload"] | {"kept_until": None} == {
            "member_id": member["id"],
            "from_tier": MEMBER,
            "to_tier": SILVER,
            "reason": "qualified",
            "kept_until": None,
        }
        status = await tier_of(client, pos_key, member["id"])
        assert status["tier"] == {"code": "silver", "name": "银卡", "rank": 1}
        assert status["since"] == iso(START)
        assert status["kept_until"] == iso(KEPT_2026)
        assert status["next"] | {"window_start": None} == {
            "tier": GOLD,
            "metric": "spend",
            "window_start": None,
            "value": 110_000,
            "threshold": 500_000,
            "remaining": 390_000,
            "by": None,
        }
        assert status["next"]["window_start"] == "2025-12-31T16:00:00Z"  # 1 January in Shanghai
        # The review after the grace judges 2026, which has already reached silver's bar: nothing left to do.
        assert status["keep"] == {
            "tier": SILVER,
            "metric": "spend",
            "window_start": "2025-12-31T16:00:00Z",
            "value": 110_000,
            "threshold": 100_000,
            "remaining": 0,
            "by": "2026-12-31T16:00:00Z",
        }

    async def test_the_new_tier_multiplies_later_earns(self, client: httpx.AsyncClient, pos_key: str) -> None:
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)
        result = await earn(client, pos_key, member["id"], 10_000)
        assert [(line["kind"], line["rule"], line["points"]) for line in result["breakdown"]] == [
            ("base_rate", "base", 100),
            ("tier_multiplier", "银卡", 20),
        ]
        assert result["points_earned"] == 120

    async def test_one_big_purchase_can_skip_a_tier(self, client: httpx.AsyncClient, pos_key: str) -> None:
        member = await enrol(client, pos_key)
        result = await earn(client, pos_key, member["id"], 600_000)
        assert (result["tier"]["code"], result["tier_changed"]) == ("gold", True)
        [change] = await history(client, pos_key, member["id"])
        assert (change["from_tier"], change["to_tier"], change["change"]) == (MEMBER, GOLD, "upgrade")
        assert change["qualification"]["gold"]["value"] == 600_000

    async def test_a_new_calendar_year_starts_from_zero(
        self, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        member = await enrol(client, pos_key)
        clock.set(datetime(2026, 12, 31, 15, 0, tzinfo=UTC))  # 23:00 on New Year's Eve in Shanghai
        await earn(client, pos_key, member["id"], 60_000)
        clock.set(datetime(2026, 12, 31, 16, 30, tzinfo=UTC))  # half past midnight: 2027
        result = await earn(client, pos_key, member["id"], 50_000)
        assert (result["tier"]["code"], result["tier_changed"]) == ("member", False)
        assert (await tier_of(client, pos_key, member["id"]))["next"]["value"] == 50_000

    async def test_a_refund_lowers_qualifying_spend(self, client: httpx.AsyncClient, pos_key: str) -> None:
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 110_000, order_ref="BIG-1")
        response = await client.post(
            "/v1/orders/BIG-1/refund", json={"amount": cny(30_000)}, headers=bearer(pos_key)
        )
        assert response.status_code == 200, response.text
        status = await tier_of(client, pos_key, member["id"])
        assert status["next"]["value"] == 80_000
        assert status["tier"]["code"] == "silver"  # a refund never downgrades by itself: the review does
        again = await earn(client, pos_key, member["id"], 10_000)
        assert again["tier_changed"] is False

    @pytest.mark.parametrize("paid_by", ["redeem", "capture"])
    async def test_a_payment_with_points_that_raises_an_earned_orders_total_upgrades_at_once(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, paid_by: str
    ) -> None:
        """An order earned on its cash part (40 000), then paid with points with its whole total (50 000):
        the order counts 50 000 from then on, reaching silver's 100 000 with an earlier 50 000. The tier
        showed next: silver, remaining 0, but stayed member until the next earn, as only an earn looked."""
        await set_program(client, admin_key, point_value_minor="100")
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 50_000, order_ref="SPARE")
        await earn(client, pos_key, member["id"], 40_000, order_ref="O1")
        if paid_by == "redeem":
            paid = await client.post(
                f"/v1/members/{member['id']}/redeem",
                json={"points": 100, "order_ref": "O1", "order_total": cny(50_000)},
                headers=bearer(pos_key),
            )
        else:
            held = await client.post(
                f"/v1/members/{member['id']}/holds",
                json={"points": 100, "order_ref": "O1", "ttl_seconds": 900},
                headers=bearer(pos_key),
            )
            assert held.status_code == 201, held.text
            paid = await client.post(
                f"/v1/holds/{held.json()['id']}/capture",
                json={"order_total": cny(50_000)},
                headers=bearer(pos_key),
            )
        assert paid.status_code == 200, paid.text

        status = await tier_of(client, pos_key, member["id"])
        assert status["tier"] == SILVER
        assert (status["next"]["tier"], status["next"]["value"]) == (GOLD, 100_000)
        [upgraded] = await events(app, "tier.upgraded")
        assert (upgraded["payload"]["from_tier"], upgraded["payload"]["to_tier"]) == (MEMBER, SILVER)
        [change] = await history(client, pos_key, member["id"])
        assert (change["change"], change["qualification"]["silver"]["value"]) == ("upgrade", 100_000)


class TestWindows:
    async def test_a_rolling_window_counts_only_the_last_n_days(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key, window="rolling_days", window_days=30, grace_days=0)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 60_000)
        clock.advance(timedelta(days=31))
        assert (await earn(client, pos_key, member["id"], 50_000))["tier"]["code"] == "member"
        clock.advance(timedelta(days=1))
        upgraded = await earn(client, pos_key, member["id"], 50_000)
        assert (upgraded["tier"]["code"], upgraded["tier_changed"]) == ("silver", True)
        status = await tier_of(client, pos_key, member["id"])
        assert status["kept_until"] == iso(clock.now() + timedelta(days=30))

    async def test_qualifying_points_count_points_earned_on_purchases(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key, metric="points", threshold=1000)
        member = await enrol(client, pos_key)
        response = await client.post(
            f"/v1/members/{member['id']}/adjustments",
            json={"points": 5000, "reason": "goodwill"},
            headers=bearer(admin_key),
        )
        assert response.status_code == 201
        assert (await earn(client, pos_key, member["id"], 99_900))["tier"]["code"] == "member"  # 999 points
        assert (await earn(client, pos_key, member["id"], 100))["tier"][
            "code"
        ] == "silver"  # adjustments don't count


@pytest.mark.usefixtures("ladder")
class TestReview:
    async def test_a_year_without_requalifying_moves_down_only_after_its_grace(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)
        clock.set(KEPT_2026 - timedelta(seconds=1))
        assert await review(app) == 0
        clock.set(KEPT_2026)
        assert await review(app) == 1  # 2026 reached silver's bar: kept through 2027 and its grace
        status = await tier_of(client, pos_key, member["id"])
        assert (status["tier"]["code"], status["kept_until"]) == ("silver", iso(KEPT_2027))
        assert status["keep"] | {"window_start": None} == {
            "tier": SILVER,
            "metric": "spend",
            "window_start": None,
            "value": 0,
            "threshold": 100_000,
            "remaining": 100_000,
            "by": "2027-12-31T16:00:00Z",
        }

        clock.set(KEPT_2027 - timedelta(seconds=1))  # nothing bought in 2027
        assert await review(app) == 0
        clock.set(KEPT_2027)
        assert await review(app) == 1
        status = await tier_of(client, pos_key, member["id"])
        assert (status["tier"]["code"], status["kept_until"]) == ("member", None)  # the entry tier is kept
        assert await review(app) == 0  # reviewing again changes nothing

        [downgrade, renewal, upgrade] = await history(client, pos_key, member["id"])
        assert (downgrade["from_tier"], downgrade["to_tier"], downgrade["change"]) == (
            SILVER,
            MEMBER,
            "downgrade",
        )
        assert downgrade["qualification"]["silver"] == {
            "metric": "spend",
            "window_start": "2026-12-31T16:00:00Z",  # as stored in the history's JSON, like every instant
            "value": 0,
            "threshold": 100_000,
        }
        assert (renewal["change"], renewal["qualification"]["silver"]["value"]) == ("renewal", 100_000)
        assert upgrade["change"] == "upgrade"
        [event] = await events(app, "tier.downgraded")
        assert (event["payload"]["from_tier"], event["payload"]["to_tier"]) == (SILVER, MEMBER)

    async def test_a_purchase_in_the_grace_period_counts_for_the_new_year(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000, order_ref="Y2026")
        await client.post("/v1/orders/Y2026/refund", json={"amount": cny(100_000)}, headers=bearer(pos_key))
        clock.set(KEPT_2026 - timedelta(days=1))  # in the grace period, 2027 already
        assert (await earn(client, pos_key, member["id"], 100_000))["tier"]["code"] == "silver"
        clock.set(KEPT_2026)
        assert await review(app) == 0  # requalified for 2027 at the till: nothing due
        assert (await tier_of(client, pos_key, member["id"]))["kept_until"] == iso(KEPT_2027)

    async def test_one_step_down_by_default(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 500_000, order_ref="GOLD-1")
        # Most of it comes back: what is left of 2026 reaches no tier.
        refund = await client.post(
            "/v1/orders/GOLD-1/refund", json={"amount": cny(450_000)}, headers=bearer(pos_key)
        )
        assert refund.status_code == 200
        assert (await tier_of(client, pos_key, member["id"]))["tier"]["code"] == "gold"  # until the review
        clock.set(KEPT_2026)
        assert await review(app) == 1
        status = await tier_of(client, pos_key, member["id"])
        assert status["tier"]["code"] == "silver"
        assert status["kept_until"] == iso(KEPT_2027)  # a year on silver to requalify

    async def test_straight_to_the_qualified_tier_when_the_programme_says_so(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key, tier_downgrade="to_qualified")
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 500_000, order_ref="GOLD-2")
        await client.post("/v1/orders/GOLD-2/refund", json={"amount": cny(450_000)}, headers=bearer(pos_key))
        clock.set(KEPT_2026)
        assert await review(app) == 1
        assert (await tier_of(client, pos_key, member["id"]))["tier"]["code"] == "member"

    async def test_straight_down_lands_no_lower_than_what_the_window_under_way_has_reached(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """A gold member whose 2026 reached no tier buys silver's bar of 2027 in gold's grace: the earn
        leaves them on gold (above it) and the review, judging 2026, put them straight on the entry tier,
        though 2027 had already reached silver (`next`: silver, remaining 0) and their next purchase of any
        size would move them up again."""
        await set_program(client, admin_key, tier_downgrade="to_qualified")
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 500_000, order_ref="GOLD-3")
        await client.post("/v1/orders/GOLD-3/refund", json={"amount": cny(450_000)}, headers=bearer(pos_key))
        clock.set(KEPT_2026 - timedelta(days=5))  # 2027 in Shanghai, in gold's grace
        assert (await earn(client, pos_key, member["id"], 120_000))["tier"]["code"] == "gold"
        clock.set(KEPT_2026)
        assert await review(app) == 1

        status = await tier_of(client, pos_key, member["id"])
        assert (status["tier"], status["kept_until"]) == (SILVER, iso(KEPT_2027))
        [change, _] = await history(client, pos_key, member["id"])
        assert (change["from_tier"], change["to_tier"], change["change"]) == (GOLD, SILVER, "downgrade")
        assert change["qualification"]["silver"] | {"window_start": None} == {
            "metric": "spend",
            "window_start": None,
            "value": 120_000,
            "threshold": 100_000,
        }
        [downgraded] = await events(app, "tier.downgraded")
        assert downgraded["payload"]["to_tier"] == SILVER

    async def test_requalifying_next_year_keeps_the_tier_another_year(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)
        clock.set(datetime(2027, 1, 10, 4, 0, tzinfo=UTC))
        result = await earn(client, pos_key, member["id"], 100_000)
        assert (result["tier"]["code"], result["tier_changed"]) == ("silver", False)
        assert (await tier_of(client, pos_key, member["id"]))["kept_until"] == iso(KEPT_2027)
        clock.set(KEPT_2026 + timedelta(days=1))
        assert await review(app) == 0
        assert (await tier_of(client, pos_key, member["id"]))["tier"]["code"] == "silver"

    async def test_a_member_who_qualifies_at_review_is_renewed(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)
        # The operator lowers silver's bar to nothing: at review the member still qualifies.
        response = await client.put(
            "/v1/tiers/silver",
            json={
                "name": "银卡",
                "rank": 1,
                "metric": "spend",
                "window": "calendar_year",
                "threshold": 0,
                "grace_days": 30,
            },
            headers=bearer(admin_key),
        )
        assert response.status_code == 200
        clock.set(KEPT_2026)
        assert await review(app) == 1
        status = await tier_of(client, pos_key, member["id"])
        assert (status["tier"]["code"], status["kept_until"], status["since"]) == (
            "silver",
            iso(KEPT_2027),
            iso(START),
        )
        assert (await history(client, pos_key, member["id"]))[0]["change"] == "renewal"

    async def test_past_changes_cite_the_ladder_of_their_time(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)
        response = await client.put(
            "/v1/tiers/silver",
            json={
                "name": "银卡",
                "rank": 1,
                "metric": "spend",
                "window": "calendar_year",
                "threshold": 300_000,
            },
            headers=bearer(admin_key),
        )
        assert response.status_code == 200
        [upgrade] = await history(client, pos_key, member["id"])
        rules = (
            await client.get(f"/v1/tier-versions/{upgrade['ladder_version']}", headers=bearer(admin_key))
        ).json()
        silver = next(t for t in rules["tiers"] if t["code"] == "silver")
        assert silver["threshold"] == 100_000 == upgrade["qualification"]["silver"]["threshold"]
        assert (await tier_of(client, pos_key, member["id"]))["tier"]["code"] == "silver"


class TestGraceOnTheProgrammesCalendar:
    async def test_the_grace_days_end_at_the_same_time_on_the_programme_s_clock_across_a_clock_change(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """New York moves its clocks on an hour on 14 March 2027. Silver's 90 days of grace after the year
        judged (which ends at midnight on 1 January there, 05:00 UTC) run to midnight on 1 April there, 04:00
        UTC; 90 times 24 hours ran to 01:00."""
        await set_program(client, admin_key, timezone="America/New_York")
        await standard_ladder(client, admin_key, grace_days=90)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)
        kept = datetime(2027, 4, 1, 4, 0, tzinfo=UTC)
        assert (await tier_of(client, pos_key, member["id"]))["kept_until"] == iso(kept)
        [upgraded] = await events(app, "tier.upgraded")
        assert upgraded["payload"]["kept_until"] == iso(kept)

        clock.set(kept - timedelta(seconds=1))
        assert await review(app) == 0
        clock.set(kept)
        assert await review(app) == 1  # 2026 reached silver's bar: renewed for 2027 and its grace
        # 1 January 2028 plus 90 days is 31 March (a leap year), midnight there in daylight time.
        assert (await tier_of(client, pos_key, member["id"]))["kept_until"] == "2028-03-31T04:00:00Z"

    async def test_a_tier_brought_over_is_kept_until_the_date_given_across_a_clock_change(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """The window judged ends the grace's calendar days before the date given, so the grace added back
        gives that date again, and the review comes then."""
        await set_program(client, admin_key, timezone="America/New_York")
        await standard_ladder(client, admin_key, grace_days=90)
        kept = datetime(2027, 4, 1, 4, 0, tzinfo=UTC)  # midnight in New York
        response = await client.post(
            "/v1/members/import",
            json={"members": [{"phone": unique_phone(), "tier": {"code": "silver", "until": iso(kept)}}]},
            headers=bearer(admin_key),
        )
        assert response.status_code == 201, response.text
        [member] = response.json()["members"]
        assert (await tier_of(client, pos_key, member["id"]))["kept_until"] == iso(kept)
        clock.set(kept - timedelta(seconds=1))
        assert await review(app) == 0
        clock.set(kept)
        assert await review(app) == 1


class TestRollingReview:
    """The review of a rolling window judges the `window_days` after the purchase that won or renewed the
    tier: that purchase counted for the window that won it."""

    @pytest.fixture(autouse=True)
    async def rolling(self, client: httpx.AsyncClient, admin_key: str) -> None:
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key, window="rolling_days", window_days=365, grace_days=30)

    async def test_the_purchase_that_won_the_tier_does_not_keep_it_for_a_second_window(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        """The review judged [T0 - 1µs, T0 + 365 days): the purchase at T0 renewed the tier it had won."""
        member = await enrol(client, pos_key)
        assert (await earn(client, pos_key, member["id"], 100_000))["tier"] == SILVER
        keep = (await tier_of(client, pos_key, member["id"]))["keep"]
        assert (keep["window_start"], keep["by"], keep["value"]) == (
            iso(START + timedelta(microseconds=1)),
            iso(START + timedelta(days=365)),
            0,
        )
        clock.set(START + timedelta(days=395))
        assert await review(app) == 1
        assert (await tier_of(client, pos_key, member["id"]))["tier"] == MEMBER
        assert (await history(client, pos_key, member["id"]))[0]["qualification"]["silver"]["value"] == 0

    async def test_the_same_spend_in_one_purchase_or_two_is_judged_alike(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        one, two = await enrol(client, pos_key), await enrol(client, pos_key)
        await earn(client, pos_key, two["id"], 60_000)
        clock.advance(timedelta(days=10))
        assert (await earn(client, pos_key, one["id"], 100_000))["tier"] == SILVER
        assert (await earn(client, pos_key, two["id"], 40_000))["tier"] == SILVER
        clock.advance(timedelta(days=395))
        assert await review(app) == 2
        assert [(await tier_of(client, pos_key, m["id"]))["tier"] for m in (one, two)] == [MEMBER] * 2

    async def test_a_calendar_year_beside_it_is_still_judged_on_the_year_that_won_it(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        """A mixed ladder: silver counts the last 365 days, gold the calendar year."""
        silver_member, gold_member = await enrol(client, pos_key), await enrol(client, pos_key)
        assert (await earn(client, pos_key, silver_member["id"], 150_000))["tier"] == SILVER
        assert (await earn(client, pos_key, gold_member["id"], 500_000))["tier"] == GOLD
        clock.set(KEPT_2026)
        assert await review(app) == 1
        status = await tier_of(client, pos_key, gold_member["id"])
        assert (status["tier"], status["kept_until"]) == (GOLD, iso(KEPT_2027))
        assert status["keep"]["window_start"] == "2026-12-31T16:00:00Z"  # 2027, judged in its turn
        clock.set(START + timedelta(days=395))
        assert await review(app) == 1
        assert (await tier_of(client, pos_key, silver_member["id"]))["tier"] == MEMBER

    async def test_without_grace_the_purchase_that_won_the_tier_does_not_keep_it_at_the_window_s_last_instant(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """Reviewed the instant the window ends (no grace), the last 365 days still begin with the purchase
        that won the tier: the review must not read them as the window under way and renew on it."""
        body = {
            "name": "银卡",
            "rank": 1,
            "metric": "spend",
            "window": "rolling_days",
            "window_days": 365,
            "threshold": 100_000,
            "points_multiplier": "1.2",
            "grace_days": 0,
        }
        response = await client.put("/v1/tiers/silver", json=body, headers=bearer(admin_key))
        assert response.status_code == 200, response.text
        member = await enrol(client, pos_key)
        assert (await earn(client, pos_key, member["id"], 100_000))["tier"] == SILVER
        clock.set(START + timedelta(days=365))
        assert await review(app) == 1
        assert (await tier_of(client, pos_key, member["id"]))["tier"] == MEMBER


class TestLateReview:
    """The worker was down when a member's time on their tier ran out: the review it runs when it comes back
    places them as the review on time would have, from when that time ran out."""

    async def test_a_downgrade_reviewed_days_late_dates_the_new_tier_from_when_the_old_ran_out(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        rolling = {"window": "rolling_days", "window_days": 365, "grace_days": 30}
        await add_tier(client, admin_key, "member", rank=0, name="普通会员")
        await add_tier(client, admin_key, "silver", rank=1, name="银卡", threshold=100_000, **rolling)
        await add_tier(client, admin_key, "gold", rank=2, name="金卡", threshold=500_000, **rolling)
        member = await enrol(client, pos_key)
        assert (await earn(client, pos_key, member["id"], 500_000, order_ref="GOLD-L"))["tier"] == GOLD
        refund = await client.post("/v1/orders/GOLD-L/refund", json={"full": True}, headers=bearer(pos_key))
        assert refund.status_code == 200, refund.text
        ran_out = START + timedelta(days=395)  # the window's 365 days and the grace's 30
        assert (await tier_of(client, pos_key, member["id"]))["kept_until"] == iso(ran_out)

        # The worker is down from just before then; the member buys meanwhile, short of any bar.
        clock.set(ran_out + timedelta(days=1))
        assert (await earn(client, pos_key, member["id"], 50_000))["tier"] == GOLD
        clock.set(ran_out + timedelta(days=3))  # the worker is back
        assert await review(app) == 1

        status = await tier_of(client, pos_key, member["id"])
        assert status["tier"] == SILVER  # one step down
        assert status["since"] == iso(ran_out)
        # Silver's window runs from then, as on time: the purchase made while the worker was down counts
        # towards keeping it, and the tier is kept no longer for the review coming late.
        assert status["kept_until"] == iso(ran_out + timedelta(days=365 + 30))
        assert (status["keep"]["window_start"], status["keep"]["value"]) == (
            iso(ran_out + timedelta(microseconds=1)),
            50_000,
        )
        assert await review(app) == 0

    async def test_an_override_that_ended_while_the_worker_was_down_is_dated_from_its_end(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """An operator's gold until the 10th day; the worker is down from before it until the 13th. The
        member is back on silver from the 10th, as the review on time would have put them, and silver's
        window runs from then: they keep it no longer for the worker coming three days late."""
        await set_program(client, admin_key)
        rolling = {"window": "rolling_days", "window_days": 365, "grace_days": 30}
        await add_tier(client, admin_key, "member", rank=0, name="普通会员")
        await add_tier(client, admin_key, "silver", rank=1, name="银卡", threshold=100_000, **rolling)
        await add_tier(client, admin_key, "gold", rank=2, name="金卡", threshold=500_000, **rolling)
        member = await enrol(client, pos_key)
        assert (await earn(client, pos_key, member["id"], 100_000))["tier"] == SILVER
        until = START + timedelta(days=10)
        await put_override(client, admin_key, member["id"], "gold", until, "promotion")

        clock.set(until + timedelta(days=3))  # the worker is back
        assert await review(app) == 1

        kept = iso(until + timedelta(days=365 + 30))
        status = await tier_of(client, pos_key, member["id"])
        assert (status["tier"], status["since"], status["override_until"], status["kept_until"]) == (
            SILVER,
            iso(until),
            None,
            kept,
        )
        [told] = [e["payload"] for e in await events(app, "tier.downgraded")]
        assert (told["to_tier"], told["kept_until"]) == (SILVER, kept)
        assert await review(app) == 0


@pytest.mark.usefixtures("ladder")
class TestOverride:
    @pytest.mark.parametrize(
        ("tier", "event_type"),
        [(GOLD, "tier.upgraded"), (MEMBER, "tier.downgraded")],  # above and below silver, which they hold
    )
    async def test_an_override_holds_against_purchases_until_its_end_then_places_the_member_as_they_qualify(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
        tier: dict[str, Any],
        event_type: str,
    ) -> None:
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)  # silver
        until = START + timedelta(days=10)
        answered = await put_override(client, admin_key, member["id"], tier["code"], until, "VIP complaint")
        assert (answered["tier"]["code"], answered["override_until"]) == (tier["code"], iso(until))
        [event] = [e for e in await events(app, event_type) if e["payload"]["to_tier"] == tier]
        assert event["payload"]["reason"] == "override"  # not the operator's words
        assert answered["keep"] is None  # nothing to do: the operator decided

        assert (await earn(client, pos_key, member["id"], 1_000))["tier"]["code"] == tier["code"]
        clock.set(until - timedelta(seconds=1))
        assert await review(app) == 0
        clock.set(until)
        assert await review(app) == 1
        status = await tier_of(client, pos_key, member["id"])
        assert (status["tier"]["code"], status["override_until"], status["kept_until"]) == (
            "silver",
            None,
            iso(KEPT_2026),
        )
        changes = [(c["change"], c["to_tier"]) for c in await history(client, pos_key, member["id"])]
        assert changes == [("override_ended", SILVER), ("override", tier), ("upgrade", SILVER)]

    async def test_the_same_override_put_again_changes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """PUT takes no Idempotency-Key (it replaces any override, so a repeat sets the same one): the
        override sent again is not a second override in the member's history, and `since` stays."""
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)  # silver
        until = START + timedelta(days=10)
        first = await put_override(client, admin_key, member["id"], "gold", until, "VIP complaint")
        clock.advance(timedelta(minutes=5))
        again = await put_override(client, admin_key, member["id"], "gold", until, "VIP complaint")
        assert again == first
        changes = [(c["change"], c["to_tier"]) for c in await history(client, pos_key, member["id"])]
        assert changes == [("override", GOLD), ("upgrade", SILVER)]
        assert len([e for e in await events(app, "tier.upgraded") if e["payload"]["to_tier"] == GOLD]) == 1

    @pytest.mark.parametrize("ended_by", ["review", "operator", "purchase"])
    async def test_an_override_ends_on_the_tier_the_member_had_earned_while_its_time_lasts(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
        ended_by: str,
    ) -> None:
        """A promotion to gold in February must not cost a member the silver they keep until 2028: their
        window this year has nothing in it yet, and the override's end once put them on the entry tier."""
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)  # silver for 2026
        clock.set(datetime(2027, 2, 5, tzinfo=UTC))
        await review(app)
        assert (await tier_of(client, pos_key, member["id"]))["kept_until"] == iso(KEPT_2027)  # renewed
        until = datetime(2027, 2, 15, tzinfo=UTC)
        await put_override(client, admin_key, member["id"], "gold", until, "promotion")
        await put_override(client, admin_key, member["id"], "gold", until + timedelta(days=1), "longer")
        if ended_by == "operator":
            ended = await client.delete(
                f"/v1/members/{member['id']}/tier/override", headers=bearer(admin_key)
            )
            assert ended.status_code == 200, ended.text
        else:
            clock.set(until + timedelta(days=2))
            if ended_by == "review":
                assert await review(app) == 1
            else:  # a small purchase after the override ran out, before the review got to it
                assert (await earn(client, pos_key, member["id"], 1_000))["tier"]["code"] == "silver"
        status = await tier_of(client, pos_key, member["id"])
        assert (status["tier"], status["override_until"], status["kept_until"]) == (
            SILVER,
            None,
            iso(KEPT_2027),
        )
        assert [c["change"] for c in await history(client, pos_key, member["id"])][:3] == [
            "override_ended",
            "override",
            "override",
        ]
        downgraded = [e["payload"]["to_tier"] for e in await events(app, "tier.downgraded")]
        assert downgraded == [SILVER]  # from gold, and never below

    async def test_an_earned_tier_whose_time_ran_out_under_an_override_is_reviewed_as_it_would_have_been(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 500_000)  # gold in 2026
        clock.set(datetime(2027, 2, 5, tzinfo=UTC))
        await review(app)  # kept until 30 January 2028 on 2026's spend
        until = datetime(2028, 3, 1, tzinfo=UTC)
        clock.set(datetime(2027, 12, 20, tzinfo=UTC))
        await put_override(client, admin_key, member["id"], "member", until, "suspected fraud, cleared")
        clock.set(until)
        assert await review(app) == 1
        # 2027's window, judged when gold's time ran out, holds nothing: one step down, as its review would
        # have done (the entry tier is what 2028's window alone gives).
        status = await tier_of(client, pos_key, member["id"])
        assert (status["tier"], status["override_until"]) == (SILVER, None)

    async def test_ending_an_override_now(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        path = f"/v1/members/{member['id']}/tier/override"
        response = await client.delete(path, headers=bearer(admin_key))
        assert (response.status_code, response.json()["code"]) == (404, "tier_override_not_found")
        body = {"tier": "gold", "until": iso(START + timedelta(days=3)), "reason": "trial"}
        assert (await client.put(path, json=body, headers=bearer(admin_key))).status_code == 200
        ended = await client.delete(path, headers=bearer(admin_key))
        assert ended.status_code == 200
        assert (ended.json()["tier"]["code"], ended.json()["override_until"]) == ("member", None)

    async def test_bad_overrides_are_refused(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        path = f"/v1/members/{member['id']}/tier/override"
        later = iso(START + timedelta(days=3))
        cases = [
            (admin_key, {"tier": "gold", "until": iso(START - timedelta(days=1)), "reason": "x"}, 422),
            (admin_key, {"tier": "platinum", "until": later, "reason": "x"}, 422),
            (admin_key, {"tier": "gold", "until": "2026-04-01T00:00:00", "reason": "x"}, 422),
            (pos_key, {"tier": "gold", "until": later, "reason": "x"}, 403),
        ]
        for key, body, status in cases:
            assert (await client.put(path, json=body, headers=bearer(key))).status_code == status, body
        assert (await tier_of(client, pos_key, member["id"]))["tier"]["code"] == "member"
        assert await history(client, pos_key, member["id"]) == []
