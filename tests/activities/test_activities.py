"""Activities: rules an operator sets, activities a member is rewarded for once per ref, through the ledger,
within the caps, with streaks counted in programme days (Asia/Shanghai: a day turns at 16:00 UTC)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from tests.activities.helpers import add_activity_rule, record, record_reply
from tests.builders import enrol
from tests.conftest import bearer
from tests.inspect_db import events, table_counts
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import points, set_program

# START is Monday 16 March 2026, 18:00 in Shanghai. Programme day n (0: that Monday) runs from
# DAY_TURN + (n - 1) days to DAY_TURN + n days.
DAY_TURN = datetime(2026, 3, 16, 16, 0, tzinfo=UTC)


def noon_of(day: int) -> datetime:
    """Noon in Shanghai (04:00 UTC) on programme day `day`."""
    return datetime(2026, 3, 16, 4, 0, tzinfo=UTC) + timedelta(days=day)


async def activity_entries(client: httpx.AsyncClient, key: str, member_id: str) -> list[dict[str, Any]]:
    listed = await client.get(
        f"/v1/members/{member_id}/ledger", params={"type": "activity"}, headers=bearer(key)
    )
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


class TestActivityRules:
    async def test_create_read_list_change_and_switch_off(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        rule = await add_activity_rule(
            client,
            admin_key,
            daily_cap=1,
            period_cap=20,
            streak_bonuses=[{"days": 7, "points": 50}, {"days": 3, "points": 5}],
        )
        assert (rule["type"], rule["points"], rule["daily_cap"], rule["period_cap"], rule["cap_period"]) == (
            "check_in",
            10,
            1,
            20,
            "month",
        )
        assert rule["streak_bonuses"] == [{"days": 3, "points": 5}, {"days": 7, "points": 50}]
        assert rule["active"] is True
        read = await client.get(f"/v1/activity-rules/{rule['id']}", headers=bearer(admin_key))
        assert read.json() == rule
        review = await add_activity_rule(client, admin_key, type="review", name="Product review", points=30)
        listed = await client.get("/v1/activity-rules", params={"limit": 1}, headers=bearer(admin_key))
        assert [r["id"] for r in listed.json()["items"]] == [rule["id"]]
        rest = await client.get(
            "/v1/activity-rules", params={"cursor": listed.json()["next_cursor"]}, headers=bearer(admin_key)
        )
        assert [r["id"] for r in rest.json()["items"]] == [review["id"]]
        assert rest.json()["next_cursor"] is None

        changed = await client.patch(
            f"/v1/activity-rules/{rule['id']}",
            json={"points": 15, "period_cap": None, "active": False},
            headers=bearer(admin_key),
        )
        assert changed.status_code == 200, changed.text
        body = changed.json()
        assert (body["points"], body["daily_cap"], body["period_cap"], body["active"]) == (15, 1, None, False)
        assert body["streak_bonuses"] == rule["streak_bonuses"]

    async def test_one_rule_per_type(self, client: httpx.AsyncClient, admin_key: str) -> None:
        await add_activity_rule(client, admin_key)
        again = await client.post(
            "/v1/activity-rules",
            json={"type": "check_in", "name": "Another", "points": 1},
            headers=bearer(admin_key),
        )
        assert (again.status_code, again.json()["code"]) == (409, "activity_rule_exists")

    async def test_bad_rules_are_refused(self, client: httpx.AsyncClient, admin_key: str) -> None:
        bad: list[dict[str, Any]] = [
            {"type": "check_in", "name": "x", "points": -1},
            {"type": "Check In", "name": "x", "points": 1},
            {"type": "share", "name": "x", "points": 1, "daily_cap": 0},
            {"type": "share", "name": "x", "points": 1, "cap_period": "fortnight"},
            {"type": "share", "name": "x", "points": 1, "streak_bonuses": [{"days": 1, "points": 5}]},
            {"type": "share", "name": "x", "points": "12"},
        ]
        for body in bad:
            response = await client.post("/v1/activity-rules", json=body, headers=bearer(admin_key))
            assert (response.status_code, response.json()["code"]) == (422, "validation_error"), body
        twice = await client.post(
            "/v1/activity-rules",
            json={
                "type": "share",
                "name": "x",
                "points": 1,
                "streak_bonuses": [{"days": 3, "points": 5}, {"days": 3, "points": 6}],
            },
            headers=bearer(admin_key),
        )
        assert (twice.status_code, twice.json()["code"]) == (422, "validation_error")
        nulled = await client.patch(
            f"/v1/activity-rules/{(await add_activity_rule(client, admin_key))['id']}",
            json={"points": None},
            headers=bearer(admin_key),
        )
        assert nulled.status_code == 422

    async def test_an_unknown_rule_is_404(self, client: httpx.AsyncClient, admin_key: str) -> None:
        missing = "0190a000-0000-7000-8000-000000000000"
        for response in (
            await client.get(f"/v1/activity-rules/{missing}", headers=bearer(admin_key)),
            await client.patch(
                f"/v1/activity-rules/{missing}", json={"points": 1}, headers=bearer(admin_key)
            ),
        ):
            assert (response.status_code, response.json()["code"]) == (404, "activity_rule_not_found")

    async def test_only_admin_keys_manage_rules(self, client: httpx.AsyncClient, pos_key: str) -> None:
        response = await client.get("/v1/activity-rules", headers=bearer(pos_key))
        assert (response.status_code, response.json()["code"]) == (403, "scope_not_allowed")


class TestRecording:
    async def test_an_activity_earns_through_the_ledger_with_the_rule_in_the_breakdown(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        rule = await add_activity_rule(client, admin_key, type="review", name="Product review", points=30)
        member = await enrol(client, pos_key)
        done = await record(client, pos_key, member["id"], "review-881", type="review")
        assert (done["type"], done["ref"], done["rule_id"], done["points_earned"], done["balance"]) == (
            "review",
            "review-881",
            rule["id"],
            30,
            30,
        )
        assert done["breakdown"] == [{"rule": "Product review", "kind": "activity", "points": 30}]
        assert (done["streak"], done["day"]) == (1, "2026-03-16")
        [entry] = await activity_entries(client, pos_key, member["id"])
        assert (entry["amount"], entry["balance_after"]) == (30, 30)
        assert entry["details"]["breakdown"] == done["breakdown"]
        assert (await points(client, pos_key, member["id"]))["balance"] == 30
        [event] = await events(app, "activity.recorded")
        assert (event["payload"]["points"], event["payload"]["activity_id"]) == (30, done["id"])
        await assert_ledger_invariant(app, member["id"])

    async def test_the_same_ref_answers_the_first_result_and_earns_once(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        rule = await add_activity_rule(client, admin_key, type="share", name="Share", points=5)
        member = await enrol(client, pos_key)
        first = await record(client, pos_key, member["id"], "post-1", type="share")
        clock.advance(timedelta(days=2))
        # Even with the rule changed and switched off since, the ref answers what it earned then.
        await client.patch(
            f"/v1/activity-rules/{rule['id']}",
            json={"points": 99, "active": False},
            headers=bearer(admin_key),
        )
        again = await record_reply(client, pos_key, member["id"], "post-1", type="share")
        assert again.status_code == 200, again.text
        assert first["already_recorded"] is False
        assert again.json() == first | {"already_recorded": True}
        assert len(await activity_entries(client, pos_key, member["id"])) == 1
        assert (await points(client, pos_key, member["id"]))["balance"] == 5
        assert len(await events(app, "activity.recorded")) == 1
        # The same ref by another member, or of another type, is an activity of its own.
        other = await enrol(client, pos_key)
        await add_activity_rule(client, admin_key, type="check_in", name="Check-in", points=1)
        assert (await record(client, pos_key, other["id"], "post-1", type="check_in"))["points_earned"] == 1
        assert (await record(client, pos_key, member["id"], "post-1", type="check_in"))["points_earned"] == 1
        await assert_ledger_invariant(app)

    async def test_unknown_and_switched_off_types_are_refused_and_not_recorded(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        unknown = await record_reply(client, pos_key, member["id"], "r-1", type="dance")
        assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_activity_type")
        rule = await add_activity_rule(client, admin_key, type="dance", name="Dance", points=5, active=False)
        inactive = await record_reply(client, pos_key, member["id"], "r-1", type="dance")
        assert (inactive.status_code, inactive.json()["code"]) == (422, "activity_rule_inactive")
        await client.patch(
            f"/v1/activity-rules/{rule['id']}", json={"active": True}, headers=bearer(admin_key)
        )
        assert (await record(client, pos_key, member["id"], "r-1", type="dance"))["points_earned"] == 5
        assert await events(app, "activity.recorded") != []

    async def test_members_that_cannot_earn_are_refused(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        await add_activity_rule(client, admin_key)
        missing = await record_reply(client, pos_key, "0190a000-0000-7000-8000-000000000000", "r-1")
        assert (missing.status_code, missing.json()["code"]) == (404, "member_not_found")
        member = await enrol(client, pos_key)
        await client.patch(
            f"/v1/members/{member['id']}", json={"status": "suspended"}, headers=bearer(admin_key)
        )
        suspended = await record_reply(client, pos_key, member["id"], "r-1")
        assert (suspended.status_code, suspended.json()["code"]) == (409, "member_not_active")

    @pytest.mark.parametrize("status", ["suspended", "closed"])
    async def test_a_ref_sent_again_after_the_member_was_suspended_answers_the_first_result(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, status: str
    ) -> None:
        """An app whose reply was lost sends a check-in again without a key, after the member was suspended
        (or closed) meanwhile: it was rewarded, and the same ref answers the first result (200), as it does
        for an active member, not member_not_active, which reads as the check-in rewarded with nothing. A new
        ref is still member_not_active."""
        await set_program(client, admin_key)
        await add_activity_rule(client, admin_key)
        member = await enrol(client, pos_key)
        first = await record(client, pos_key, member["id"], "visit-1")
        changed = await client.patch(
            f"/v1/members/{member['id']}", json={"status": status}, headers=bearer(admin_key)
        )
        assert changed.status_code == 200, changed.text
        before = await table_counts(app, "ledger_entries", "member_activities", "outbox_events")
        again = await record_reply(client, pos_key, member["id"], "visit-1")
        assert again.status_code == 200, again.text
        assert again.json() == first | {"already_recorded": True}
        new = await record_reply(client, pos_key, member["id"], "visit-2")
        assert (new.status_code, new.json()["code"]) == (409, "member_not_active"), new.text
        assert await table_counts(app, "ledger_entries", "member_activities", "outbox_events") == before
        await assert_ledger_invariant(app)

    async def test_bad_bodies_are_422(self, client: httpx.AsyncClient, admin_key: str, pos_key: str) -> None:
        member = await enrol(client, pos_key)
        for body in ({"type": "check_in"}, {"type": "check_in", "ref": ""}, {"type": 1, "ref": "x"}, {}):
            response = await client.post(
                f"/v1/members/{member['id']}/activities", json=body, headers=bearer(pos_key)
            )
            assert (response.status_code, response.json()["code"]) == (422, "validation_error"), body


class TestWindows:
    """A rule is in force within its window, as an earning rule is: a December check-in campaign is one rule
    with its dates. Outside it an activity is refused like one of a switched-off rule, and not recorded."""

    async def test_an_activity_earns_only_within_the_rules_window(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        clock: FrozenClock,
        admin_key: str,
        pos_key: str,
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        opens, closes = noon_of(2), noon_of(5)
        rule = await add_activity_rule(
            client, admin_key, valid_from=opens.isoformat(), valid_until=closes.isoformat()
        )
        assert (rule["valid_from"], rule["valid_until"]) == (
            opens.isoformat().replace("+00:00", "Z"),
            closes.isoformat().replace("+00:00", "Z"),
        )

        early = await record_reply(client, pos_key, member["id"], "day-0")
        assert (early.status_code, early.json()["code"]) == (422, "activity_rule_inactive")
        assert early.json()["valid_from"] == rule["valid_from"]
        clock.set(opens)
        assert (await record(client, pos_key, member["id"], "day-0"))["points_earned"] == 10
        clock.set(closes - timedelta(microseconds=1))
        assert (await record(client, pos_key, member["id"], "day-4"))["points_earned"] == 10
        clock.set(closes)
        late = await record_reply(client, pos_key, member["id"], "day-5")
        assert (late.status_code, late.json()["code"]) == (422, "activity_rule_inactive")
        assert late.json()["valid_until"] == rule["valid_until"]

        # Only the two activities within the window were recorded and earned.
        entries = await activity_entries(client, admin_key, member["id"])
        assert [entry["amount"] for entry in entries] == [10, 10]
        assert (await points(client, pos_key, member["id"]))["balance"] == 20
        assert len(await events(app, "activity.recorded")) == 2
        await assert_ledger_invariant(app)

    async def test_a_window_is_changed_and_lifted_with_patch(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        rule = await add_activity_rule(client, admin_key, valid_until=noon_of(1).isoformat())
        clock.set(noon_of(3))
        over = await record_reply(client, pos_key, member["id"], "r-1")
        assert (over.status_code, over.json()["code"]) == (422, "activity_rule_inactive")

        extended = await client.patch(
            f"/v1/activity-rules/{rule['id']}",
            json={"valid_until": noon_of(10).isoformat()},
            headers=bearer(admin_key),
        )
        assert extended.status_code == 200, extended.text
        # Receivers learn of the window as of the switch: the event carries both ends.
        told = (await events(app, "activity_rule.changed"))[-1]["payload"]
        assert (told["valid_from"], told["valid_until"]) == (None, extended.json()["valid_until"])
        assert (await record(client, pos_key, member["id"], "r-1"))["points_earned"] == 10

        clock.set(noon_of(12))
        lifted = await client.patch(
            f"/v1/activity-rules/{rule['id']}", json={"valid_until": None}, headers=bearer(admin_key)
        )
        assert (lifted.json()["valid_from"], lifted.json()["valid_until"]) == (None, None)
        assert (await record(client, pos_key, member["id"], "r-2"))["points_earned"] == 10
        read = await client.get(f"/v1/activity-rules/{rule['id']}", headers=bearer(admin_key))
        assert read.json() == lifted.json()

    async def test_the_same_patch_again_changes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str
    ) -> None:
        """PATCH takes no Idempotency-Key (a repeat sets the same values): the change sent again keeps the
        rule's `updated_at` and receivers hear of one change."""
        rule = await add_activity_rule(client, admin_key)
        body = {"points": 20, "daily_cap": 2, "valid_until": noon_of(10).isoformat(), "active": True}
        path = f"/v1/activity-rules/{rule['id']}"
        clock.advance(timedelta(minutes=1))
        first = await client.patch(path, json=body, headers=bearer(admin_key))
        assert first.status_code == 200, first.text
        clock.advance(timedelta(minutes=5))
        again = await client.patch(path, json=body, headers=bearer(admin_key))
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        assert len(await events(app, "activity_rule.changed")) == 2  # created, then the one change

    async def test_two_changes_at_once_never_leave_an_empty_window(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        # Each change alone leaves a window; together, one opening on day 2 and one closing on day 1, they
        # would not. They take turns: the second is refused against what the first left, never a 500.
        for round_ in range(5):
            rule = await add_activity_rule(client, admin_key, type=f"share_{round_}", name="Share")
            path = f"/v1/activity-rules/{rule['id']}"
            opening, closing = await asyncio.gather(
                client.patch(path, json={"valid_from": noon_of(2).isoformat()}, headers=bearer(admin_key)),
                client.patch(path, json={"valid_until": noon_of(1).isoformat()}, headers=bearer(admin_key)),
            )
            statuses = sorted([opening.status_code, closing.status_code])
            assert statuses == [200, 422], (opening.text, closing.text)
            refused = opening if opening.status_code == 422 else closing
            assert refused.json()["code"] == "validation_error"
            read = (await client.get(path, headers=bearer(admin_key))).json()
            kept = opening if opening.status_code == 200 else closing
            assert read == kept.json()

    async def test_an_empty_or_unzoned_window_is_refused_and_changes_nothing(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        start = noon_of(2).isoformat()
        for window in (
            {"valid_from": start, "valid_until": start},
            {"valid_from": noon_of(3).isoformat(), "valid_until": start},
            {"valid_from": "2026-03-20T12:00:00"},  # no time zone: which noon?
        ):
            refused = await client.post(
                "/v1/activity-rules",
                json={"type": "share", "name": "Share", "points": 1, **window},
                headers=bearer(admin_key),
            )
            assert (refused.status_code, refused.json()["code"]) == (422, "validation_error"), window
        listed = await client.get("/v1/activity-rules", headers=bearer(admin_key))
        assert listed.json()["items"] == []

        # A change that would leave the window empty is refused against the window the rule has.
        rule = await add_activity_rule(client, admin_key, valid_from=start)
        emptied = await client.patch(
            f"/v1/activity-rules/{rule['id']}",
            json={"valid_until": noon_of(1).isoformat()},
            headers=bearer(admin_key),
        )
        assert (emptied.status_code, emptied.json()["code"]) == (422, "validation_error")
        assert emptied.json()["errors"][0]["field"] == "valid_until"
        read = await client.get(f"/v1/activity-rules/{rule['id']}", headers=bearer(admin_key))
        assert read.json() == rule


class TestCaps:
    async def test_the_daily_cap_refuses_until_the_programme_day_turns(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        await add_activity_rule(client, admin_key, type="share", name="Share", points=5, daily_cap=2)
        member = await enrol(client, pos_key)
        await record(client, pos_key, member["id"], "s-1", type="share")
        await record(client, pos_key, member["id"], "s-2", type="share")
        capped = await record_reply(client, pos_key, member["id"], "s-3", type="share")
        assert capped.status_code == 409
        problem = capped.json()
        assert (problem["code"], problem["cap"], problem["limit"]) == ("activity_cap_reached", "daily", 2)
        assert problem["resets_at"] == "2026-03-16T16:00:00Z"  # midnight in Shanghai
        # Refused means not recorded: nothing earned, and the ref is free for another day.
        assert (await points(client, pos_key, member["id"]))["balance"] == 10
        clock.set(DAY_TURN - timedelta(seconds=1))
        still = await record_reply(client, pos_key, member["id"], "s-3", type="share")
        assert (still.status_code, still.json()["code"]) == (409, "activity_cap_reached")
        clock.set(DAY_TURN)
        assert (await record(client, pos_key, member["id"], "s-3", type="share"))["day"] == "2026-03-17"
        assert (await points(client, pos_key, member["id"]))["balance"] == 15
        await assert_ledger_invariant(app, member["id"])

    async def test_the_weekly_cap_counts_from_monday(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        await add_activity_rule(
            client, admin_key, type="review", name="Review", points=20, period_cap=3, cap_period="week"
        )
        member = await enrol(client, pos_key)
        for day in range(3):  # Monday to Wednesday
            clock.set(noon_of(day))
            await record(client, pos_key, member["id"], f"rv-{day}", type="review")
        clock.set(noon_of(6))  # Sunday
        capped = await record_reply(client, pos_key, member["id"], "rv-6", type="review")
        assert (capped.status_code, capped.json()["cap"], capped.json()["limit"]) == (409, "period", 3)
        assert capped.json()["resets_at"] == "2026-03-22T16:00:00Z"  # Monday 23 March, midnight in Shanghai
        clock.set(noon_of(7))  # the next Monday
        await record(client, pos_key, member["id"], "rv-6", type="review")
        assert (await points(client, pos_key, member["id"]))["balance"] == 80

    async def test_a_lifetime_cap_never_resets(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        await add_activity_rule(
            client,
            admin_key,
            type="profile_completed",
            name="Profile completed",
            points=100,
            period_cap=1,
            cap_period="lifetime",
        )
        member = await enrol(client, pos_key)
        await record(client, pos_key, member["id"], "profile", type="profile_completed")
        clock.advance(timedelta(days=400))
        again = await record_reply(client, pos_key, member["id"], "profile-again", type="profile_completed")
        assert (again.status_code, again.json()["cap"], again.json()["resets_at"]) == (409, "period", None)
        # The first ref still answers its result.
        repeat = await record_reply(client, pos_key, member["id"], "profile", type="profile_completed")
        assert (repeat.status_code, repeat.json()["points_earned"]) == (200, 100)


class TestStreaks:
    async def test_every_third_consecutive_day_earns_the_bonus_and_a_missed_day_starts_over(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        await add_activity_rule(
            client, admin_key, points=10, daily_cap=1, streak_bonuses=[{"days": 3, "points": 25}]
        )
        member = await enrol(client, pos_key)
        earned = []
        for day in (0, 1, 2, 3, 4, 5, 7, 8):  # day 6 missed
            clock.set(noon_of(day))
            done = await record(client, pos_key, member["id"], f"checkin-{day}")
            earned.append((done["streak"], done["points_earned"]))
        assert earned == [(1, 10), (2, 10), (3, 35), (4, 10), (5, 10), (6, 35), (1, 10), (2, 10)]
        clock.set(noon_of(2) + timedelta(days=7))
        third = await record_reply(client, pos_key, member["id"], "checkin-9")
        assert third.json()["breakdown"] == [
            {"rule": "Daily check-in", "kind": "activity", "points": 10},
            {"rule": "Daily check-in: 3-day streak", "kind": "streak_bonus", "points": 25},
        ]
        assert (await points(client, pos_key, member["id"]))["balance"] == 8 * 10 + 2 * 25 + 35
        await assert_ledger_invariant(app, member["id"])

    async def test_days_turn_in_the_programmes_time_zone(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        await add_activity_rule(client, admin_key, daily_cap=1, streak_bonuses=[{"days": 2, "points": 7}])
        member = await enrol(client, pos_key)
        # 23:30 and 00:30 in Shanghai: the same day in UTC, two programme days.
        clock.set(DAY_TURN - timedelta(minutes=30))
        assert (await record(client, pos_key, member["id"], "a"))["streak"] == 1
        clock.set(DAY_TURN + timedelta(minutes=30))
        second = await record(client, pos_key, member["id"], "b")
        assert (second["streak"], second["points_earned"], second["day"]) == (2, 17, "2026-03-17")

    async def test_more_activities_on_one_day_keep_the_streak_and_earn_the_bonus_once(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        await add_activity_rule(client, admin_key, points=1, streak_bonuses=[{"days": 2, "points": 10}])
        member = await enrol(client, pos_key)
        clock.set(noon_of(0))
        await record(client, pos_key, member["id"], "a")
        clock.set(noon_of(1))
        assert [
            ((r := await record(client, pos_key, member["id"], ref))["streak"], r["points_earned"])
            for ref in ("b", "c")
        ] == [(2, 11), (2, 1)]


class TestActivityAnswersBeforeTheJobsRun:
    async def test_points_beside_a_hold_sparing_ended_points_answer_what_a_read_shows(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """The hold spared points past their end until the activity's points freed some for them to expire
        from: the answer gave the row's balance, 60 above what a read showed."""
        await set_program(client, admin_key, expiry_months=12)
        await add_activity_rule(client, admin_key, points=60)
        member_id = str((await enrol(client, pos_key))["id"])
        adjusted = await client.post(
            f"/v1/members/{member_id}/adjustments",
            json={"points": 100, "reason": "welcome"},
            headers=bearer(admin_key),
        )
        assert adjusted.status_code == 201, adjusted.text
        clock.advance(timedelta(days=364))
        held = await client.post(
            f"/v1/members/{member_id}/holds",
            json={"points": 100, "order_ref": "CART", "ttl_seconds": 3 * 24 * 3600},
            headers=bearer(pos_key),
        )
        assert held.status_code == 201, held.text
        clock.advance(timedelta(days=2))
        recorded = await record(client, pos_key, member_id, "visit-1")
        assert recorded["balance"] == (await points(client, pos_key, member_id))["balance"] == 100
        again = await record_reply(client, pos_key, member_id, "visit-1")
        assert (again.status_code, again.json()["balance"]) == (200, 100)
        await assert_ledger_invariant(app, member_id)
