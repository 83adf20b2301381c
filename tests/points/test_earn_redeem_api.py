from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock, format_instant
from tests.builders import enrol
from tests.conftest import START, bearer
from tests.inspect_db import count, events, table_counts
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import add_rule, cny, earn, next_order, points, set_program

WRITES = ("ledger_entries", "point_lots", "orders", "outbox_events", "holds")


@pytest.fixture
async def member(client: httpx.AsyncClient, admin_key: str, pos_key: str) -> dict[str, object]:
    await set_program(client, admin_key)
    return await enrol(client, pos_key, birthday="1990-03-02")


class TestEarn:
    async def test_earn_one_point_per_yuan(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member: dict[str, object]
    ) -> None:
        result = await earn(client, pos_key, str(member["id"]), 12_990, order_ref="POS-1")
        assert result["points_earned"] == 129
        assert result["breakdown"] == [{"rule": "base", "kind": "base_rate", "points": 129}]
        assert result["balance"] == 129
        assert result["tier_changed"] is False
        summary = await points(client, pos_key, str(member["id"]))
        assert (summary["balance"], summary["held"], summary["available"], summary["lifetime_earned"]) == (
            129,
            0,
            129,
            129,
        )
        [event] = await events(app, "points.earned")
        assert event["payload"]["points"] == 129
        assert event["payload"]["order_ref"] == "POS-1"
        await assert_ledger_invariant(app, str(member["id"]))

    async def test_breakdown_names_every_rule(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, member: dict[str, object]
    ) -> None:
        await add_rule(
            client,
            admin_key,
            name="周三会员日",
            kind="member_day",
            properties={"weekday": 1, "multiplier": "2"},
        )
        await add_rule(
            client,
            admin_key,
            name="生日月双倍",
            kind="birthday",
            properties={"multiplier": "2", "period": "month"},
        )
        await add_rule(
            client,
            admin_key,
            name="酒水三倍",
            kind="category_bonus",
            properties={"categories": ["wine"], "multiplier": "3"},
        )
        result = await earn(
            client,
            pos_key,
            str(member["id"]),
            10_000,
            items=[
                {"sku": "W1", "category": "wine", "quantity": 2, "unit_price": cny(2_000)},
                {"sku": "F1", "category": "food", "quantity": 1, "unit_price": cny(6_000)},
            ],
        )
        # 2026-03-16 is a Monday in March; the member was born in March.
        assert {line["rule"]: line["points"] for line in result["breakdown"]} == {
            "base": 100,
            "周三会员日": 100,
            "生日月双倍": 100,
            "酒水三倍": 80,
        }
        assert result["points_earned"] == 380

    @pytest.mark.parametrize(
        ("rounding", "paid", "listed", "expected"),
        [("down", 1_000, 3_000, [10, 10]), ("up", 2_000, 14_000, [20, 20])],
    )
    async def test_a_category_bonus_on_a_discounted_receipt_is_exact(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        member: dict[str, object],
        rounding: str,
        paid: int,
        listed: int,
        expected: list[int],
    ) -> None:
        await set_program(client, admin_key, rounding=rounding)
        await add_rule(
            client,
            admin_key,
            name="鞋类双倍",
            kind="category_bonus",
            properties={"categories": ["shoes"], "multiplier": "2"},
        )
        items = [{"sku": "S1", "category": "shoes", "quantity": 1, "unit_price": cny(listed)}]
        result = await earn(client, pos_key, str(member["id"]), paid, items=items)
        assert [line["points"] for line in result["breakdown"]] == expected

    @pytest.mark.parametrize(
        ("unit_price", "multiplier"),
        [(0, "3"), (1_000, "1"), (40, "2")],
        ids=["a free gift", "a multiplier of one", "a bonus that rounds to none"],
    )
    async def test_a_rule_that_gives_no_points_does_not_cancel_the_others(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        member: dict[str, object],
        unit_price: int,
        multiplier: str,
    ) -> None:
        await add_rule(
            client,
            admin_key,
            name="Member day x2",
            kind="member_day",
            properties={"weekday": 1, "multiplier": "2"},
        )
        await add_rule(
            client,
            admin_key,
            name="Promo (exclusive)",
            kind="category_bonus",
            properties={"categories": ["promo"], "multiplier": multiplier},
            stackable=False,
            priority=10,
        )
        items = [
            {"sku": "P1", "category": "promo", "quantity": 1, "unit_price": cny(unit_price)},
            {"sku": "F1", "category": "food", "quantity": 1, "unit_price": cny(10_000 - unit_price)},
        ]
        # 2026-03-16 is a Monday: the member day doubles the receipt, and the promo line gives nothing.
        result = await earn(client, pos_key, str(member["id"]), 10_000, items=items)
        assert result["breakdown"] == [
            {"rule": "base", "kind": "base_rate", "points": 100},
            {"rule": "Member day x2", "kind": "member_day", "points": 100},
        ]
        assert result["points_earned"] == 200

    async def test_same_order_earns_once(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member: dict[str, object]
    ) -> None:
        await earn(client, pos_key, str(member["id"]), 5_000, order_ref="POS-2")
        before = await table_counts(app, *WRITES)
        again = await client.post(
            f"/v1/members/{member['id']}/earn",
            json={"order_ref": "POS-2", "amount": cny(5_000)},
            headers=bearer(pos_key),
        )
        assert again.status_code == 409
        assert again.json()["code"] == "order_already_earned"
        assert await table_counts(app, *WRITES) == before
        assert (await points(client, pos_key, str(member["id"])))["balance"] == 50

    async def test_order_of_another_member_is_refused(
        self, client: httpx.AsyncClient, pos_key: str, member: dict[str, object]
    ) -> None:
        other = await enrol(client, pos_key)
        await earn(client, pos_key, str(member["id"]), 5_000, order_ref="POS-3")
        response = await client.post(
            f"/v1/members/{other['id']}/earn",
            json={"order_ref": "POS-3", "amount": cny(100)},
            headers=bearer(pos_key),
        )
        assert response.status_code == 409
        assert response.json()["code"] == "order_belongs_to_another_member"

    async def test_retried_earn_with_one_key_earns_once_and_answers_the_same(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member: dict[str, object]
    ) -> None:
        body = {"order_ref": "POS-4", "amount": cny(8_800)}
        headers = {**bearer(pos_key), "Idempotency-Key": "till-3-POS-4"}
        responses = [
            await client.post(f"/v1/members/{member['id']}/earn", json=body, headers=headers)
            for _ in range(5)
        ]
        assert {r.status_code for r in responses} == {200}
        assert len({r.content for r in responses}) == 1
        assert (await points(client, pos_key, str(member["id"])))["balance"] == 88
        assert await count(app, "ledger_entries") == 1

    @pytest.mark.parametrize(
        ("body", "status", "code"),
        [
            ({"order_ref": "A", "amount": {"amount": 100, "currency": "USD"}}, 422, "currency_mismatch"),
            ({"order_ref": "A", "amount": {"amount": 10.5, "currency": "CNY"}}, 422, "validation_error"),
            ({"order_ref": "A", "amount": {"amount": "100", "currency": "CNY"}}, 422, "validation_error"),
            ({"order_ref": "A", "amount": {"amount": -1, "currency": "CNY"}}, 422, "validation_error"),
            (
                {"order_ref": "bad ref/", "amount": {"amount": 100, "currency": "CNY"}},
                422,
                "validation_error",
            ),
            ({"amount": {"amount": 100, "currency": "CNY"}}, 422, "validation_error"),
            (
                {
                    "order_ref": "A",
                    "amount": {"amount": 100, "currency": "CNY"},
                    "occurred_at": "2027-01-01T00:00:00Z",
                },
                422,
                "validation_error",
            ),
            (
                {
                    "order_ref": "A",
                    "amount": {"amount": 100, "currency": "CNY"},
                    "occurred_at": "2026-01-01T00:00:00",
                },
                422,
                "validation_error",
            ),
            ({"order_ref": "A", "amount": {"amount": 0, "currency": "CNY"}}, 422, "validation_error"),
            ({"order_ref": "A", "amount": {"amount": 10**13, "currency": "CNY"}}, 422, "validation_error"),
            (
                {
                    "order_ref": "A",
                    "amount": {"amount": 100, "currency": "CNY"},
                    "occurred_at": "0001-01-01T00:00:00+14:00",
                },
                422,
                "validation_error",
            ),
            (
                {
                    "order_ref": "A",
                    "amount": {"amount": 100, "currency": "CNY"},
                    "occurred_at": "2026-02-01T00:00:00Z",
                },
                422,
                "validation_error",
            ),
            (
                {
                    "order_ref": "A",
                    "amount": {"amount": 100, "currency": "CNY"},
                    "items": [{"sku": "X", "quantity": 0, "unit_price": {"amount": 1, "currency": "CNY"}}],
                },
                422,
                "validation_error",
            ),
        ],
    )
    async def test_bad_earn_writes_nothing(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        member: dict[str, object],
        body: dict[str, object],
        status: int,
        code: str,
    ) -> None:
        before = await table_counts(app, *WRITES)
        response = await client.post(f"/v1/members/{member['id']}/earn", json=body, headers=bearer(pos_key))
        assert response.status_code == status, response.text
        assert response.json()["code"] == code
        assert await table_counts(app, *WRITES) == before

    async def test_unknown_or_suspended_member(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, member: dict[str, object]
    ) -> None:
        missing = await client.post(
            "/v1/members/01a20000-0000-7000-8000-000000000000/earn",
            json={"order_ref": "A", "amount": cny(100)},
            headers=bearer(pos_key),
        )
        assert missing.status_code == 404
        suspend = await client.patch(
            f"/v1/members/{member['id']}", json={"status": "suspended"}, headers=bearer(admin_key)
        )
        assert suspend.status_code == 200
        suspended = await client.post(
            f"/v1/members/{member['id']}/earn",
            json={"order_ref": "A", "amount": cny(100)},
            headers=bearer(pos_key),
        )
        assert suspended.status_code == 409
        assert suspended.json()["code"] == "member_not_active"

    async def test_a_receipt_sent_again_once_past_the_offline_grace_is_refused_as_the_repeat_it_is(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        member: dict[str, object],
        clock: FrozenClock,
    ) -> None:
        """A till back after 30 days offline syncs its oldest receipt a minute inside the grace; the reply is
        lost, and its retry without a key comes two minutes later, past the grace: the receipt earned, and its
        repeat is order_already_earned, not validation_error on occurred_at, which reads as the receipt
        refused (a clerk would then credit it by hand). A receipt not earned is refused as before."""
        member_id = str(member["id"])
        occurred = format_instant(START - timedelta(days=30) + timedelta(minutes=1))
        body = {"order_ref": "OFF-1", "amount": cny(10_000), "occurred_at": occurred}
        first = await client.post(f"/v1/members/{member_id}/earn", json=body, headers=bearer(pos_key))
        assert first.status_code == 200, first.text
        clock.advance(timedelta(minutes=2))
        await assert_repeat_earned_and_new_refused(app, client, pos_key, member_id, body, "OFF-2")

    async def test_a_receipt_sent_again_after_the_rate_rose_past_what_one_purchase_may_earn_is_a_repeat(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        member: dict[str, object],
    ) -> None:
        """A till's earn for a large purchase, its reply lost, sent again without a key after an operator
        raised the earn rate so far that the purchase would now earn more than one purchase may: it earned,
        and its repeat is order_already_earned, not validation_error on amount, which reads as the receipt
        refused. A new receipt that large is still refused."""
        member_id = str(member["id"])
        body = {"order_ref": "BIG-1", "amount": cny(10**11)}  # a billion yuan: a billion points at 1 a yuan
        first = await client.post(f"/v1/members/{member_id}/earn", json=body, headers=bearer(pos_key))
        assert first.status_code == 200, first.text
        await set_program(client, admin_key, earn_rate="10000")
        await assert_repeat_earned_and_new_refused(app, client, pos_key, member_id, body, "BIG-2")

    @pytest.mark.parametrize("status", ["suspended", "closed"])
    async def test_what_a_member_did_before_a_suspension_sent_again_is_answered_as_done(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        member: dict[str, object],
        status: str,
    ) -> None:
        """A till whose replies were lost sends an earn, a redeem and a hold again without a key, after the
        member was suspended (or closed) meanwhile: each was made, and its repeat is refused as a repeat is
        for an active member (order_already_earned, order_already_redeemed, hold_exists), not as
        member_not_active, which reads as a payment with points refused and has the customer pay in cash too.
        Something new is still member_not_active."""
        member_id = str(member["id"])
        sent = [
            ("earn", {"order_ref": "S-1", "amount": cny(10_000)}, "order_already_earned"),
            ("redeem", {"order_ref": "S-2", "points": 30}, "order_already_redeemed"),
            ("holds", {"order_ref": "S-3", "points": 20, "ttl_seconds": 600}, "hold_exists"),
        ]
        for path, body, _ in sent:
            first = await client.post(f"/v1/members/{member_id}/{path}", json=body, headers=bearer(pos_key))
            assert first.status_code in (200, 201), first.text
        changed = await client.patch(
            f"/v1/members/{member_id}", json={"status": status}, headers=bearer(admin_key)
        )
        assert changed.status_code == 200, changed.text
        before = await table_counts(app, *WRITES)
        for path, body, code in sent:
            if status == "closed" and path == "holds":
                code = "member_not_active"  # closing released the hold: there is none to repeat
            again = await client.post(f"/v1/members/{member_id}/{path}", json=body, headers=bearer(pos_key))
            assert (again.status_code, again.json()["code"]) == (409, code), again.text
        new = await client.post(
            f"/v1/members/{member_id}/redeem", json={"order_ref": "S-4", "points": 1}, headers=bearer(pos_key)
        )
        assert (new.status_code, new.json()["code"]) == (409, "member_not_active"), new.text
        assert await table_counts(app, *WRITES) == before
        await assert_ledger_invariant(app)

    async def test_billing_key_cannot_earn(
        self, client: httpx.AsyncClient, billing_key: str, member: dict[str, object]
    ) -> None:
        response = await client.post(
            f"/v1/members/{member['id']}/earn",
            json={"order_ref": "A", "amount": cny(100)},
            headers=bearer(billing_key),
        )
        assert response.status_code == 403


class TestRedeem:
    async def test_redeem_pays_with_points(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member: dict[str, object]
    ) -> None:
        await earn(client, pos_key, str(member["id"]), 50_000)
        response = await client.post(
            f"/v1/members/{member['id']}/redeem",
            json={"points": 300, "order_ref": "POS-9"},
            headers=bearer(pos_key),
        )
        assert response.status_code == 200, response.text
        assert response.json() == {
            "order_ref": "POS-9",
            "points_redeemed": 300,
            "value": {"amount": 300, "currency": "CNY"},
            "balance": 200,
            "available": 200,
        }
        [event] = await events(app, "points.redeemed")
        assert event["payload"]["value"] == {"amount": 300, "currency": "CNY"}
        await assert_ledger_invariant(app, str(member["id"]))

    async def test_insufficient_points_is_422_and_changes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member: dict[str, object]
    ) -> None:
        await earn(client, pos_key, str(member["id"]), 10_000)
        before = await table_counts(app, *WRITES)
        response = await client.post(
            f"/v1/members/{member['id']}/redeem",
            json={"points": 101, "order_ref": "POS-10"},
            headers=bearer(pos_key),
        )
        assert response.status_code == 422
        assert response.json()["code"] == "insufficient_points"
        assert response.json()["available"] == 100
        assert await table_counts(app, *WRITES) == before
        assert (await points(client, pos_key, str(member["id"])))["balance"] == 100

    async def test_minimum_and_share_limits(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, member: dict[str, object]
    ) -> None:
        await set_program(client, admin_key, min_redeem_points=100, max_redeem_share="0.5")
        await earn(client, pos_key, str(member["id"]), 100_000)
        small = await client.post(
            f"/v1/members/{member['id']}/redeem",
            json={"points": 99, "order_ref": "A1"},
            headers=bearer(pos_key),
        )
        assert small.json()["code"] == "below_minimum_redeem"
        too_much = await client.post(
            f"/v1/members/{member['id']}/redeem",
            json={"points": 600, "order_ref": "A1", "order_total": cny(1_000)},
            headers=bearer(pos_key),
        )
        assert too_much.json()["code"] == "redeem_share_exceeded"
        fine = await client.post(
            f"/v1/members/{member['id']}/redeem",
            json={"points": 500, "order_ref": "A1", "order_total": cny(1_000)},
            headers=bearer(pos_key),
        )
        assert fine.status_code == 200

    async def test_an_order_total_of_nothing_is_refused_as_input(
        self, client: httpx.AsyncClient, app: FastAPI, pos_key: str, member: dict[str, object]
    ) -> None:
        """Points cannot pay part of an order that costs nothing: the total is refused as the field it is,
        as a capture's is, not judged against the programme's share."""
        await earn(client, pos_key, str(member["id"]), 10_000)
        before = await table_counts(app, *WRITES)
        response = await client.post(
            f"/v1/members/{member['id']}/redeem",
            json={"points": 10, "order_ref": "Z1", "order_total": cny(0)},
            headers=bearer(pos_key),
        )
        assert (response.status_code, response.json()["code"]) == (422, "validation_error")
        assert [e["field"] for e in response.json()["errors"]] == ["order_total.amount"]
        assert await table_counts(app, *WRITES) == before

    async def test_order_redeems_once(
        self, client: httpx.AsyncClient, pos_key: str, member: dict[str, object]
    ) -> None:
        await earn(client, pos_key, str(member["id"]), 10_000)
        url = f"/v1/members/{member['id']}/redeem"
        assert (
            await client.post(url, json={"points": 10, "order_ref": "B1"}, headers=bearer(pos_key))
        ).status_code == 200
        again = await client.post(url, json={"points": 10, "order_ref": "B1"}, headers=bearer(pos_key))
        assert again.status_code == 409
        assert again.json()["code"] == "order_already_redeemed"

    async def test_a_redeem_sent_again_without_a_key_after_it_spent_every_point_is_answered_as_made(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member: dict[str, object]
    ) -> None:
        # A till whose reply was lost sends the redeem again, without a key: the first spent all the
        # member's points. The answer must say the order is paid (409 order_already_redeemed), not 422
        # insufficient_points ("nothing written"), read as a refusal: the customer would pay in cash too.
        await earn(client, pos_key, str(member["id"]), 10_000)
        url = f"/v1/members/{member['id']}/redeem"
        body = {"points": 100, "order_ref": "ALL-1"}
        assert (await client.post(url, json=body, headers=bearer(pos_key))).status_code == 200
        again = await client.post(url, json=body, headers=bearer(pos_key))
        assert again.status_code == 409, again.text
        assert again.json()["code"] == "order_already_redeemed"
        # Another member's order, or a refunded one, is named as such too, whatever their points.
        other = await enrol(client, pos_key)
        theirs = await client.post(
            f"/v1/members/{other['id']}/redeem",
            json={"points": 5, "order_ref": "ALL-1"},
            headers=bearer(pos_key),
        )
        assert (theirs.status_code, theirs.json()["code"]) == (409, "order_belongs_to_another_member")
        assert (await points(client, pos_key, str(member["id"])))["balance"] == 0
        await assert_ledger_invariant(app)

    @pytest.mark.parametrize(
        ("rule", "refused_as"),
        [
            ({"min_redeem_points": 100}, "below_minimum_redeem"),
            ({"max_redeem_share": "0.01"}, "redeem_share_exceeded"),
        ],
    )
    async def test_a_redeem_sent_again_after_an_operator_tightened_a_rule_is_answered_as_made(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        member: dict[str, object],
        rule: dict[str, object],
        refused_as: str,
    ) -> None:
        """A till whose reply was lost sends the redeem again without a key, after an operator raised the
        minimum redemption or lowered the share points may pay: the first paid, and its repeat is 409
        order_already_redeemed, not the rule's 422, which reads as the payment refused (the customer would
        pay in cash too). A new redeem under the rule is still refused by it; nothing is written."""
        member_id = str(member["id"])
        await earn(client, pos_key, member_id, 10_000)
        url = f"/v1/members/{member_id}/redeem"
        body = {"points": 50, "order_ref": "RULE-1", "order_total": cny(1_000)}
        assert (await client.post(url, json=body, headers=bearer(pos_key))).status_code == 200
        await set_program(client, admin_key, **rule)
        before = await table_counts(app, *WRITES)
        again = await client.post(url, json=body, headers=bearer(pos_key))
        assert (again.status_code, again.json()["code"]) == (409, "order_already_redeemed"), again.text
        new = await client.post(url, json=body | {"order_ref": "RULE-2"}, headers=bearer(pos_key))
        assert (new.status_code, new.json()["code"]) == (422, refused_as), new.text
        assert await table_counts(app, *WRITES) == before
        assert (await points(client, pos_key, member_id))["balance"] == 50
        await assert_ledger_invariant(app)

    @pytest.mark.parametrize("value", [0, -5, 1.5, "10", None])
    async def test_points_must_be_a_positive_whole_number(
        self, client: httpx.AsyncClient, pos_key: str, member: dict[str, object], value: object
    ) -> None:
        response = await client.post(
            f"/v1/members/{member['id']}/redeem",
            json={"points": value, "order_ref": "C1"},
            headers=bearer(pos_key),
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "points"

    async def test_redeem_spends_the_oldest_lots_first(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member: dict[str, object], clock: object
    ) -> None:
        from datetime import timedelta

        from loyalty_api.clock import FrozenClock
        from tests.inspect_db import rows

        assert isinstance(clock, FrozenClock)
        await earn(client, pos_key, str(member["id"]), 10_000, order_ref="OLD")
        clock.advance(timedelta(days=30))
        await earn(client, pos_key, str(member["id"]), 10_000, order_ref="NEW")
        await client.post(
            f"/v1/members/{member['id']}/redeem",
            json={"points": 150, "order_ref": "SPEND"},
            headers=bearer(pos_key),
        )
        lots = await rows(app, "SELECT order_ref, remaining FROM point_lots ORDER BY created_at")
        assert [(lot["order_ref"], lot["remaining"]) for lot in lots] == [("OLD", 0), ("NEW", 50)]
        await assert_ledger_invariant(app, str(member["id"]))


class TestResponsesNeverCarryFloats:
    async def test_no_float_in_any_points_reply(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, member: dict[str, object]
    ) -> None:
        import json

        def floats(value: object) -> list[float]:
            if isinstance(value, float):
                return [value]
            if isinstance(value, dict):
                return [f for v in value.values() for f in floats(v)]
            if isinstance(value, list):
                return [f for v in value for f in floats(v)]
            return []

        await set_program(client, admin_key, earn_rate="1.5", point_value_minor="0.5")
        replies = [
            await client.post(
                f"/v1/members/{member['id']}/earn",
                json={"order_ref": next_order(), "amount": cny(12_345)},
                headers=bearer(pos_key),
            ),
            await client.post(
                f"/v1/members/{member['id']}/redeem",
                json={"points": 33, "order_ref": next_order()},
                headers=bearer(pos_key),
            ),
            await client.get(f"/v1/members/{member['id']}/points", headers=bearer(pos_key)),
            await client.get(f"/v1/members/{member['id']}/ledger", headers=bearer(pos_key)),
            await client.get("/v1/program", headers=bearer(pos_key)),
        ]
        for reply in replies:
            assert reply.status_code == 200, reply.text
            assert floats(json.loads(reply.text)) == [], reply.text


async def assert_repeat_earned_and_new_refused(
    app: FastAPI, client: httpx.AsyncClient, key: str, member_id: str, body: dict[str, Any], new_ref: str
) -> None:
    """The earn `body`, which earned before a rule of the moment changed, sent again: answered as the repeat
    it is (409 order_already_earned); the same receipt under the new `new_ref` is refused by the rule (422).
    Neither writes anything."""
    before = await table_counts(app, *WRITES)
    again = await client.post(f"/v1/members/{member_id}/earn", json=body, headers=bearer(key))
    assert (again.status_code, again.json()["code"]) == (409, "order_already_earned"), again.text
    new = await client.post(
        f"/v1/members/{member_id}/earn", json=body | {"order_ref": new_ref}, headers=bearer(key)
    )
    assert (new.status_code, new.json()["code"]) == (422, "validation_error"), new.text
    assert await table_counts(app, *WRITES) == before
    await assert_ledger_invariant(app)
