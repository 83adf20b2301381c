from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from loyalty_api.clock import FrozenClock
from loyalty_api.program.models import Program
from tests.builders import add_tier, enrol
from tests.conftest import bearer, units_of
from tests.inspect_db import events, rows
from tests.points.helpers import DEMO_LIKE_PROGRAM, add_rule, earn, set_program


class TestProgram:
    async def test_defaults_before_anything_is_set(self, client: httpx.AsyncClient, pos_key: str) -> None:
        response = await client.get("/v1/program", headers=bearer(pos_key))
        assert response.status_code == 200
        program = response.json()
        assert program["currency"] == "CNY"
        assert program["earn_rate"] == "1"
        assert isinstance(program["point_value_minor"], str)

    async def test_put_then_read(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key, earn_rate="2.5", expiry_months=6, rounding="half_up")
        [event] = await events(app, "program.updated")
        assert event["payload"]["settings"]["earn_rate"] == "2.5"
        program = (await client.get("/v1/program", headers=bearer(pos_key))).json()
        assert program["earn_rate"] == "2.5"
        assert program["expiry_months"] == 6
        assert program["rounding"] == "half_up"

    async def test_the_same_settings_again_change_nothing_and_announce_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock
    ) -> None:
        """PUT takes no Idempotency-Key (a repeat sets the same values): a back office that sends the
        settings again, or twice on a bad network, does not tell every receiver the programme changed."""
        first = await set_program(client, admin_key, earn_rate="2.5")
        [stored] = await rows(app, "SELECT updated_at FROM programs")
        values = await rows(app, "SELECT * FROM point_value_changes")
        clock.advance(timedelta(minutes=5))
        assert await set_program(client, admin_key, earn_rate="2.50") == first
        assert len(await events(app, "program.updated")) == 1
        assert await rows(app, "SELECT updated_at FROM programs") == [stored]
        assert await rows(app, "SELECT * FROM point_value_changes") == values
        # A change is still one.
        await set_program(client, admin_key, earn_rate="3")
        assert len(await events(app, "program.updated")) == 2

    async def test_only_admin_may_change_it(self, client: httpx.AsyncClient, pos_key: str) -> None:
        response = await client.put("/v1/program", json=DEMO_LIKE_PROGRAM, headers=bearer(pos_key))
        assert response.status_code == 403

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"currency": "yuan"}, "currency"),
            # Three letters, but no ISO 4217 currency: yen written YEN would be read as if it had cents (1,000
            # yen as 10.00, a hundredth of the points), RMB the name of China's money, not its code; gold and
            # the code for no currency have no minor unit.
            ({"currency": "YEN"}, "currency"),
            ({"currency": "RMB"}, "currency"),
            ({"currency": "XAU"}, "currency"),
            ({"currency": "XXX"}, "currency"),
            ({"timezone": "Mars/Olympus"}, "timezone"),
            # A region of the zone database is a directory, not a zone (it was a 503, as if the database were
            # out of reach); `right/` zones count leap seconds: their clock changes came 27 seconds late.
            ({"timezone": "America"}, "timezone"),
            ({"timezone": "right/Asia/Shanghai"}, "timezone"),
            ({"timezone": "posix/Asia/Shanghai"}, "timezone"),
            ({"earn_rate": "-1"}, "earn_rate"),
            ({"earn_rate": "abc"}, "earn_rate"),
            ({"earn_rate": "1_0"}, "earn_rate"),  # Python's Decimal reads these three as 10, 1 and 1
            ({"earn_rate": "١"}, "earn_rate"),
            ({"earn_rate": " 1"}, "earn_rate"),
            ({"earn_rate": "007"}, "earn_rate"),
            ({"max_redeem_share": ".5"}, "max_redeem_share"),
            ({"point_value_minor": "0"}, "point_value_minor"),
            ({"rounding": "banker"}, "rounding"),
            ({"expiry_months": 0}, "expiry_months"),
            ({"max_redeem_share": "1.5"}, "max_redeem_share"),
            ({"expiry_reminder_days": -1}, "expiry_reminder_days"),
            ({"expiry_reminder_days": 366}, "expiry_reminder_days"),
            ({"expiry_reminder_days": "7"}, "expiry_reminder_days"),
            ({"tier_reminder_days": -1}, "tier_reminder_days"),
            ({"tier_reminder_days": 1.5}, "tier_reminder_days"),
            ({"surprise": 1}, "surprise"),
        ],
    )
    async def test_bad_settings_are_422_and_change_nothing(
        self, client: httpx.AsyncClient, admin_key: str, change: dict[str, object], field: str
    ) -> None:
        before = (await client.get("/v1/program", headers=bearer(admin_key))).json()
        response = await client.put("/v1/program", json=DEMO_LIKE_PROGRAM | change, headers=bearer(admin_key))
        assert response.status_code == 422
        assert field in [e["field"] for e in response.json()["errors"]]
        assert (await client.get("/v1/program", headers=bearer(admin_key))).json() == before

    async def test_rates_are_kept_in_their_plainest_form(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """Trailing zeros pass the digit limits; the rate is what is kept and shown, however it was written
        (fifty characters of `1.000…` once came back as a 500 on PostgreSQL)."""
        written = {"earn_rate": "1." + "0" * 48, "point_value_minor": "1E+2", "max_redeem_share": "0.50000"}
        answered = await client.put(
            "/v1/program", json=DEMO_LIKE_PROGRAM | written, headers=bearer(admin_key)
        )
        assert answered.status_code == 200, answered.text
        program = (await client.get("/v1/program", headers=bearer(pos_key))).json()
        shown = {field: program[field] for field in written}
        assert shown == {field: answered.json()[field] for field in written}
        assert shown == {"earn_rate": "1", "point_value_minor": "100", "max_redeem_share": "0.5"}
        tier = await add_tier(client, admin_key, "gold", rank=1, points_multiplier="2." + "0" * 48)
        assert tier["points_multiplier"] == "2"
        listed = (await client.get("/v1/tiers", headers=bearer(admin_key))).json()["items"]
        assert [t["points_multiplier"] for t in listed if t["code"] == "gold"] == ["2"]

    async def test_the_currency_is_for_good_once_amounts_are_recorded_in_it(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """A 10-yuan coupon is 1,000 fen: in yen it would become 1,000 yen. Before any amount is recorded the
        currency may change; after, the change is refused and nothing moves."""
        await set_program(client, admin_key, currency="JPY")  # nothing recorded yet: changed
        await set_program(client, admin_key, currency="CNY")
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 1_000)
        before = (await client.get("/v1/program", headers=bearer(admin_key))).json()
        refused = await client.put(
            "/v1/program", json=DEMO_LIKE_PROGRAM | {"currency": "JPY"}, headers=bearer(admin_key)
        )
        assert (refused.status_code, refused.json()["code"]) == (409, "currency_in_use"), refused.text
        assert refused.json()["recorded_in"] == ["orders", "ledger_entries"]
        assert (await client.get("/v1/program", headers=bearer(admin_key))).json() == before
        # The rest of the settings still change, the currency as it is.
        assert (await set_program(client, admin_key, earn_rate="2"))["earn_rate"] == "2"

    async def test_a_currency_stored_before_codes_were_checked_may_stay(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """A programme set up in a code that is no ISO 4217 currency before codes were checked keeps it (its
        amounts are recorded in it): the rest of its settings still change."""
        await set_program(client, admin_key)
        async with units_of(app).database.engine.begin() as connection:
            await connection.execute(update(Program).values(currency="RMB"))
        units_of(app).cache.clear()
        assert (await set_program(client, admin_key, currency="RMB", earn_rate="2"))["earn_rate"] == "2"

    async def test_a_reward_s_coupon_holds_the_currency(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """A reward whose coupon takes 10 yuan off records 1,000 fen before any coupon is issued: in yen the
        reward would issue coupons of 1,000 yen, and the quote would take that off."""
        await set_program(client, admin_key, currency="CNY")
        reward = await client.post(
            "/v1/rewards",
            json={
                "name": "减10元",
                "cost_points": 100,
                "coupon": {"kind": "fixed_discount", "amount": 1_000, "min_subtotal": 5_000},
            },
            headers=bearer(admin_key),
        )
        assert reward.status_code == 201, reward.text
        refused = await client.put(
            "/v1/program", json=DEMO_LIKE_PROGRAM | {"currency": "JPY"}, headers=bearer(admin_key)
        )
        assert refused.status_code == 409, refused.text
        assert (refused.json()["code"], refused.json()["recorded_in"]) == ("currency_in_use", ["rewards"])
        assert (await client.get("/v1/program", headers=bearer(pos_key))).json()["currency"] == "CNY"

    async def test_a_partner_s_earn_rate_holds_the_currency(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """A partner's earn rate is points per yuan spent there, as an earning rule's base rate is: in yen its
        customers would earn a hundred times what was agreed. A partner that only exchanges points holds
        nothing in the currency."""
        await set_program(client, admin_key, currency="CNY")
        exchanges = {"code": "airline", "name": "Airline", "exchange_out_rate": "0.5"}
        made = await client.post("/v1/partners", json=exchanges, headers=bearer(admin_key))
        assert made.status_code == 201, made.text
        await set_program(client, admin_key, currency="JPY")
        await set_program(client, admin_key, currency="CNY")
        cafe = {"code": "cafe", "name": "Cafe", "earn_rate": "1"}
        made = await client.post("/v1/partners", json=cafe, headers=bearer(admin_key))
        assert made.status_code == 201, made.text
        refused = await client.put(
            "/v1/program", json=DEMO_LIKE_PROGRAM | {"currency": "JPY"}, headers=bearer(admin_key)
        )
        assert refused.status_code == 409, refused.text
        assert (refused.json()["code"], refused.json()["recorded_in"]) == ("currency_in_use", ["partners"])
        assert (await client.get("/v1/program", headers=bearer(pos_key))).json()["currency"] == "CNY"


class TestEarningRules:
    async def test_create_list_read_replace_delete(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        created = await add_rule(
            client,
            admin_key,
            name="周三会员日",
            kind="member_day",
            properties={"weekday": 3, "multiplier": "2"},
            priority=5,
        )
        assert created["properties"] == {"weekday": 3, "multiplier": "2", "channels": [], "store_ids": []}
        listed = (await client.get("/v1/earning-rules", headers=bearer(admin_key))).json()["items"]
        assert [r["id"] for r in listed] == [created["id"]]
        replaced = await client.put(
            f"/v1/earning-rules/{created['id']}",
            json={"name": "周三", "kind": "member_day", "properties": {"weekday": 3, "multiplier": "3"}},
            headers=bearer(admin_key),
        )
        assert replaced.json()["properties"]["multiplier"] == "3"
        read = await client.get(f"/v1/earning-rules/{created['id']}", headers=bearer(admin_key))
        assert read.json()["name"] == "周三"
        deleted = await client.delete(f"/v1/earning-rules/{created['id']}", headers=bearer(admin_key))
        assert deleted.status_code == 204
        gone = await client.get(f"/v1/earning-rules/{created['id']}", headers=bearer(admin_key))
        assert gone.status_code == 404
        assert gone.json()["code"] == "earning_rule_not_found"
        changes = [e["payload"]["change"] for e in await events(app, "earning_rule.changed")]
        assert changes == ["created", "replaced", "deleted"]

    async def test_the_same_rule_put_again_changes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock
    ) -> None:
        """PUT takes no Idempotency-Key (a repeat sets the same values): the rule sent again keeps its
        `updated_at` and receivers hear of one change."""
        created = await add_rule(
            client, admin_key, name="周三", kind="member_day", properties={"weekday": 3, "multiplier": "2"}
        )
        body = {
            "name": "周三",
            "kind": "member_day",
            "properties": {"weekday": 3, "multiplier": "3"},
            "valid_from": "2026-04-01T00:00:00+08:00",
        }
        path = f"/v1/earning-rules/{created['id']}"
        clock.advance(timedelta(minutes=1))
        first = await client.put(path, json=body, headers=bearer(admin_key))
        assert first.status_code == 200, first.text
        clock.advance(timedelta(minutes=5))
        again = await client.put(
            path, json=body | {"valid_from": "2026-03-31T16:00:00Z"}, headers=bearer(admin_key)
        )
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        changes = [e["payload"]["change"] for e in await events(app, "earning_rule.changed")]
        assert changes == ["created", "replaced"]

    @pytest.mark.parametrize(
        "rule",
        [
            {"name": "x", "kind": "member_day", "properties": {"weekday": 8, "multiplier": "2"}},
            {"name": "x", "kind": "member_day", "properties": {"multiplier": "2"}},
            {"name": "x", "kind": "category_bonus", "properties": {"categories": ["a"]}},
            {
                "name": "x",
                "kind": "category_bonus",
                "properties": {"categories": ["a"], "multiplier": "2", "points_per_unit": 5},
            },
            {"name": "x", "kind": "birthday", "properties": {"multiplier": "2", "period": "year"}},
            {"name": "x", "kind": "lottery", "properties": {}},
            {"name": "x", "kind": "sku_bonus", "properties": {"skus": [], "multiplier": "2"}},
            {"name": "x", "kind": "base_rate", "properties": {"rate": 1.5, "unknown": True}},
            {"name": "", "kind": "base_rate", "properties": {"rate": "1"}},
            {"name": "x", "kind": "member_day", "properties": {"weekday": 3, "multiplier": "0.5"}},
            {"name": "x", "kind": "member_day", "properties": {"weekday": 3, "multiplier": "1_0"}},
            {"name": "x", "kind": "base_rate", "properties": {"rate": "١٠"}},
            {
                "name": "x",
                "kind": "base_rate",
                "properties": {"rate": "1"},
                "valid_until": "9999-12-31T23:00:00-14:00",
            },
        ],
    )
    async def test_invalid_rules_are_422(
        self, client: httpx.AsyncClient, admin_key: str, rule: dict[str, object]
    ) -> None:
        response = await client.post("/v1/earning-rules", json=rule, headers=bearer(admin_key))
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "validation_error"
        assert (await client.get("/v1/earning-rules", headers=bearer(admin_key))).json()["items"] == []

    async def test_window_must_end_after_it_starts(self, client: httpx.AsyncClient, admin_key: str) -> None:
        response = await client.post(
            "/v1/earning-rules",
            json={
                "name": "x",
                "kind": "base_rate",
                "properties": {"rate": "2"},
                "valid_from": "2026-05-01T00:00:00Z",
                "valid_until": "2026-04-01T00:00:00Z",
            },
            headers=bearer(admin_key),
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "valid_until"

    async def test_rules_are_for_operators(self, client: httpx.AsyncClient, pos_key: str) -> None:
        assert (await client.get("/v1/earning-rules", headers=bearer(pos_key))).status_code == 403
