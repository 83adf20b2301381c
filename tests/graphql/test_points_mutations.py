"""Points mutations give REST's answers under REST's rules, idempotency included."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.builders import enrol
from tests.conftest import bearer
from tests.graphql.helpers import USER_ERRORS, graphql, mutate
from tests.points.helpers import cny, earn, set_program

EARNED = (
    "earned { orderRef pointsEarned balance available tier { code } tierChanged breakdown { kind points } }"
)


def _earn(member_id: str, order_ref: str, amount: int = 10_000) -> dict[str, object]:
    return {"memberId": member_id, "orderRef": order_ref, "amount": {"amount": amount, "currency": "CNY"}}


class TestEarn:
    async def test_earns_what_rest_earns(self, client: httpx.AsyncClient, pos_key: str) -> None:
        one, two = await enrol(client, pos_key), await enrol(client, pos_key)
        payload = await mutate(client, pos_key, "loyaltyEarnPoints", EARNED, input=_earn(one["id"], "G-1"))
        rest = await client.post(
            f"/v1/members/{two['id']}/earn",
            json={"order_ref": "G-1-rest", "amount": {"amount": 10_000, "currency": "CNY"}},
            headers=bearer(pos_key),
        )
        earned = payload["earned"]
        assert payload["userErrors"] == [] and payload["replayed"] is False
        assert earned["pointsEarned"] == rest.json()["points_earned"] > 0
        assert earned["balance"] == rest.json()["balance"]
        assert earned["breakdown"] == [
            {"kind": b["kind"], "points": b["points"]} for b in rest.json()["breakdown"]
        ]
        points = await client.get(f"/v1/members/{one['id']}/points", headers=bearer(pos_key))
        assert points.json()["balance"] == earned["balance"]

    async def test_the_same_key_and_input_replays_without_earning_twice(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        first = await mutate(
            client,
            pos_key,
            "loyaltyEarnPoints",
            EARNED,
            input=_earn(member["id"], "G-2"),
            idempotency_key="till-7/0042",
        )
        again = await mutate(
            client,
            pos_key,
            "loyaltyEarnPoints",
            EARNED,
            input=_earn(member["id"], "G-2"),
            idempotency_key="till-7/0042",
        )
        assert again["replayed"] is True and again["earned"] == first["earned"]
        points = await client.get(f"/v1/members/{member['id']}/points", headers=bearer(pos_key))
        assert points.json()["balance"] == first["earned"]["balance"]

    async def test_the_same_key_with_other_input_is_refused(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        await mutate(
            client,
            pos_key,
            "loyaltyEarnPoints",
            EARNED,
            input=_earn(member["id"], "G-3"),
            idempotency_key="k-3",
        )
        other = await mutate(
            client,
            pos_key,
            "loyaltyEarnPoints",
            EARNED,
            input=_earn(member["id"], "G-4"),
            idempotency_key="k-3",
        )
        assert other["earned"] is None
        assert other["userErrors"] == [
            {
                "field": "idempotencyKey",
                "code": "idempotency_key_reused",
                "message": other["userErrors"][0]["message"],
            }
        ]

    async def test_the_member_named_in_another_spelling_of_its_id_is_the_same_call(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        """`memberId` takes a member's UUID in upper case, without dashes, in braces or as a URN, all one
        member, as REST's path does: a retry that spells it otherwise (a till that upper-cases what it
        scanned) replays the first answer and credits the points once. Another member is another call."""
        member = await enrol(client, pos_key)
        first = await mutate(
            client,
            pos_key,
            "loyaltyEarnPoints",
            EARNED,
            input=_earn(member["id"], "G-SPELT"),
            idempotency_key="till-9/0001",
        )
        assert first["userErrors"] == [] and first["earned"]["pointsEarned"] > 0
        spellings = (
            member["id"].upper(),
            member["id"].replace("-", ""),
            f"{{{member['id'].upper()}}}",
            f"urn:uuid:{member['id']}",
        )
        for spelling in spellings:
            again = await mutate(
                client,
                pos_key,
                "loyaltyEarnPoints",
                EARNED,
                input=_earn(spelling, "G-SPELT"),
                idempotency_key="till-9/0001",
            )
            assert (again["replayed"], again["earned"], again["userErrors"]) == (True, first["earned"], []), (
                spelling,
                again,
            )
        points = await client.get(f"/v1/members/{member['id']}/points", headers=bearer(pos_key))
        assert points.json()["balance"] == first["earned"]["balance"] == first["earned"]["pointsEarned"]
        other = await enrol(client, pos_key)
        elsewhere = await mutate(
            client,
            pos_key,
            "loyaltyEarnPoints",
            EARNED,
            input=_earn(other["id"].upper(), "G-SPELT"),
            idempotency_key="till-9/0001",
        )
        assert elsewhere["earned"] is None
        assert [(e["field"], e["code"]) for e in elsewhere["userErrors"]] == [
            ("idempotencyKey", "idempotency_key_reused")
        ]
        untouched = await client.get(f"/v1/members/{other['id']}/points", headers=bearer(pos_key))
        assert untouched.json()["balance"] == 0

    async def test_a_refusal_is_a_user_error_with_the_rest_code_and_replays(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        await mutate(client, pos_key, "loyaltyEarnPoints", EARNED, input=_earn(member["id"], "G-5"))
        twice = await mutate(
            client,
            pos_key,
            "loyaltyEarnPoints",
            EARNED,
            input=_earn(member["id"], "G-5"),
            idempotency_key="k-5",
        )
        assert [e["code"] for e in twice["userErrors"]] == ["order_already_earned"]
        replay = await mutate(
            client,
            pos_key,
            "loyaltyEarnPoints",
            EARNED,
            input=_earn(member["id"], "G-5"),
            idempotency_key="k-5",
        )
        assert replay["replayed"] is True and replay["userErrors"] == twice["userErrors"]

    async def test_input_refused_by_the_rest_rules_names_the_field_and_writes_nothing(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        payload = await mutate(
            client, pos_key, "loyaltyEarnPoints", EARNED, input=_earn(member["id"], "G-6", amount=0)
        )
        assert payload["earned"] is None
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
            ("amount.amount", "validation_error")
        ]
        unknown = await mutate(
            client, pos_key, "loyaltyEarnPoints", EARNED, input=_earn(str(uuid.uuid4()), "G-7")
        )
        assert [e["code"] for e in unknown["userErrors"]] == ["member_not_found"]
        points = await client.get(f"/v1/members/{member['id']}/points", headers=bearer(pos_key))
        assert points.json()["balance"] == 0


REDEEMED = "redeemed { orderRef pointsRedeemed value { amount currency } balance available }"
HOLD = (
    "hold { id memberId orderRef points capturedPoints status createdAt expiresAt resolvedAt "
    "balance available }"
)
REFUND = (
    "refund { orderRef memberId refundedBy refunded { amount currency } refundedTotal { amount currency } "
    "orderTotal { amount currency } pointsTakenBack pointsGivenBack shortfall pointsRefundable "
    "balance available }"
)
ADJUSTMENT = "adjustment { entryId points reason balance available }"


async def _two_members_with_points(client: httpx.AsyncClient, pos_key: str) -> tuple[str, str]:
    """Two members with 1000 points each: one for GraphQL, one for REST."""
    one, two = await enrol(client, pos_key), await enrol(client, pos_key)
    await earn(client, pos_key, one["id"], 100_000)
    await earn(client, pos_key, two["id"], 100_000)
    return one["id"], two["id"]


async def _rest(client: httpx.AsyncClient, key: str, path: str, body: dict[str, Any] | None = None) -> Any:
    response = await client.post(path, json=body, headers=bearer(key))
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _balance(client: httpx.AsyncClient, key: str, member_id: str) -> int:
    response = await client.get(f"/v1/members/{member_id}/points", headers=bearer(key))
    balance: int = response.json()["balance"]
    return balance


def _hold_as_rest(hold: dict[str, Any]) -> dict[str, Any]:
    return {
        "points": hold["points"],
        "captured_points": hold["capturedPoints"],
        "status": hold["status"],
        "balance": hold["balance"],
        "available": hold["available"],
    }


def _rest_hold(hold: dict[str, Any]) -> dict[str, Any]:
    return {k: hold[k] for k in ("points", "captured_points", "status", "balance", "available")}


class TestRedeem:
    async def test_redeems_what_rest_redeems(self, client: httpx.AsyncClient, pos_key: str) -> None:
        mine, theirs = await _two_members_with_points(client, pos_key)
        payload = await mutate(
            client,
            pos_key,
            "loyaltyRedeemPoints",
            REDEEMED,
            input={"memberId": mine, "points": 300, "orderRef": "GR-1", "orderTotal": cny(5_000)},
        )
        rest = await _rest(
            client,
            pos_key,
            f"/v1/members/{theirs}/redeem",
            {"points": 300, "order_ref": "GR-1-rest", "order_total": cny(5_000)},
        )
        assert payload["userErrors"] == [] and payload["replayed"] is False
        assert payload["redeemed"] == {
            "orderRef": "GR-1",
            "pointsRedeemed": rest["points_redeemed"],
            "value": rest["value"],
            "balance": rest["balance"],
            "available": rest["available"],
        }
        assert (payload["redeemed"]["balance"], payload["redeemed"]["value"]) == (700, cny(300))
        assert await _balance(client, pos_key, mine) == 700

    async def test_the_same_key_and_input_replays_without_redeeming_twice(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        mine, _ = await _two_members_with_points(client, pos_key)
        answers = [
            await mutate(
                client,
                pos_key,
                "loyaltyRedeemPoints",
                REDEEMED,
                input={"memberId": mine, "points": 400, "orderRef": "GR-2"},
                idempotency_key="till-3/0001",
            )
            for _ in range(2)
        ]
        assert [a["replayed"] for a in answers] == [False, True]
        assert answers[1]["redeemed"] == answers[0]["redeemed"]
        assert await _balance(client, pos_key, mine) == 600

    async def test_a_whole_number_written_with_a_fraction_is_that_number_as_rest_reads_it(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        """REST reads `100.0` as 100 (a JSON number is the same number however it is written, and a client's
        language may write it so); a Long sent in a variable is read the same way, as GraphQL's Int is."""
        mine, theirs = await _two_members_with_points(client, pos_key)
        rest = await _rest(
            client,
            pos_key,
            f"/v1/members/{theirs}/redeem",
            {"points": 100.0, "order_ref": "F-R", "order_total": {"amount": 3_000.0, "currency": "CNY"}},
        )
        payload = await mutate(
            client,
            pos_key,
            "loyaltyRedeemPoints",
            REDEEMED,
            input={
                "memberId": mine,
                "points": 100.0,
                "orderRef": "F-G",
                "orderTotal": {"amount": 3_000.0, "currency": "CNY"},
            },
        )
        assert payload["userErrors"] == []
        assert payload["redeemed"]["pointsRedeemed"] == rest["points_redeemed"] == 100
        assert payload["redeemed"]["balance"] == rest["balance"]

    async def test_too_few_points_is_the_rest_refusal_as_a_user_error(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        mine, theirs = await _two_members_with_points(client, pos_key)
        payload = await mutate(
            client,
            pos_key,
            "loyaltyRedeemPoints",
            REDEEMED,
            input={"memberId": mine, "points": 1_001, "orderRef": "GR-3"},
        )
        rest = await client.post(
            f"/v1/members/{theirs}/redeem",
            json={"points": 1_001, "order_ref": "GR-3-rest"},
            headers=bearer(pos_key),
        )
        assert payload["redeemed"] is None
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(None, "insufficient_points")]
        assert (rest.status_code, rest.json()["code"]) == (422, "insufficient_points")
        assert await _balance(client, pos_key, mine) == 1_000

    async def test_an_order_total_of_nothing_is_refused_as_the_field_and_redeems_nothing(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        mine, _ = await _two_members_with_points(client, pos_key)
        payload = await mutate(
            client,
            pos_key,
            "loyaltyRedeemPoints",
            REDEEMED,
            input={"memberId": mine, "points": 10, "orderRef": "GR-0", "orderTotal": cny(0)},
        )
        assert payload["redeemed"] is None
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
            ("orderTotal.amount", "validation_error")
        ]
        assert await _balance(client, pos_key, mine) == 1_000

    async def test_a_key_without_a_till_scope_is_refused_before_anything_runs(
        self, client: httpx.AsyncClient, pos_key: str, billing_key: str
    ) -> None:
        mine, _ = await _two_members_with_points(client, pos_key)
        query = (
            "mutation($input: RedeemPointsInput!) { loyaltyRedeemPoints(input: $input) "
            f"{{ {REDEEMED} {USER_ERRORS} }} }}"
        )
        body = await graphql(
            client, billing_key, query, input={"memberId": mine, "points": 10, "orderRef": "GR-4"}
        )
        assert body["data"] == {"loyaltyRedeemPoints": None}
        assert [e["extensions"]["code"] for e in body["errors"]] == ["scope_not_allowed"]
        assert await _balance(client, pos_key, mine) == 1_000


class TestHolds:
    async def test_hold_capture_and_release_answer_what_rest_answers(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        mine, theirs = await _two_members_with_points(client, pos_key)
        held = await mutate(
            client,
            pos_key,
            "loyaltyHoldPoints",
            HOLD,
            input={"memberId": mine, "points": 400, "orderRef": "GH-1", "ttlSeconds": 600},
        )
        rest_held = await _rest(
            client,
            pos_key,
            f"/v1/members/{theirs}/holds",
            {"points": 400, "order_ref": "GH-1-rest", "ttl_seconds": 600},
        )
        hold = held["hold"]
        assert held["userErrors"] == [] and _hold_as_rest(hold) == _rest_hold(rest_held)
        assert (hold["memberId"], hold["status"], hold["available"]) == (mine, "active", 600)
        assert (hold["createdAt"], hold["expiresAt"]) == (rest_held["created_at"], rest_held["expires_at"])

        captured = await mutate(
            client,
            pos_key,
            "loyaltyCapturePoints",
            HOLD,
            input={"holdId": hold["id"], "points": 150, "orderTotal": cny(8_000)},
        )
        rest_captured = await _rest(
            client,
            pos_key,
            f"/v1/holds/{rest_held['id']}/capture",
            {"points": 150, "order_total": cny(8_000)},
        )
        assert captured["userErrors"] == []
        assert _hold_as_rest(captured["hold"]) == _rest_hold(rest_captured)
        assert (captured["hold"]["status"], captured["hold"]["capturedPoints"]) == ("captured", 150)
        assert captured["hold"]["balance"] == 850

        again = await mutate(
            client,
            pos_key,
            "loyaltyHoldPoints",
            HOLD,
            input={"memberId": mine, "points": 50, "orderRef": "GH-2"},
        )
        rest_again = await _rest(
            client, pos_key, f"/v1/members/{theirs}/holds", {"points": 50, "order_ref": "GH-2-rest"}
        )
        released = await mutate(
            client, pos_key, "loyaltyReleasePoints", HOLD, input={"holdId": again["hold"]["id"]}
        )
        rest_released = await _rest(client, pos_key, f"/v1/holds/{rest_again['id']}/release")
        assert released["userErrors"] == []
        assert _hold_as_rest(released["hold"]) == _rest_hold(rest_released)
        assert (released["hold"]["status"], released["hold"]["available"]) == ("released", 850)
        assert released["hold"]["resolvedAt"] == rest_released["resolved_at"]

    async def test_the_same_key_and_input_replays_without_holding_twice(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        mine, _ = await _two_members_with_points(client, pos_key)
        answers = [
            await mutate(
                client,
                pos_key,
                "loyaltyHoldPoints",
                HOLD,
                input={"memberId": mine, "points": 300, "orderRef": "GH-3"},
                idempotency_key="web/checkout-9",
            )
            for _ in range(2)
        ]
        assert [a["replayed"] for a in answers] == [False, True]
        assert answers[1]["hold"] == answers[0]["hold"]
        points = (await client.get(f"/v1/members/{mine}/points", headers=bearer(pos_key))).json()
        assert (points["held"], points["available"]) == (300, 700)

    async def test_hold_exists_names_the_hold_in_its_details_as_rest_does(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        mine, _ = await _two_members_with_points(client, pos_key)
        hold = {"memberId": mine, "points": 100, "orderRef": "GH-5"}
        held = await mutate(client, pos_key, "loyaltyHoldPoints", HOLD, input=hold)
        query = (
            "mutation($input: HoldPointsInput!) { loyaltyHoldPoints(input: $input) "
            "{ hold { id } userErrors { code details } } }"
        )
        body = await graphql(client, pos_key, query, input=hold)
        again = body["data"]["loyaltyHoldPoints"]
        assert again["hold"] is None
        assert again["userErrors"] == [{"code": "hold_exists", "details": {"hold_id": held["hold"]["id"]}}]

    async def test_a_hold_ended_already_is_hold_not_active(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        mine, _ = await _two_members_with_points(client, pos_key)
        held = await mutate(
            client,
            pos_key,
            "loyaltyHoldPoints",
            HOLD,
            input={"memberId": mine, "points": 100, "orderRef": "GH-4"},
        )
        hold_id = held["hold"]["id"]
        await mutate(client, pos_key, "loyaltyReleasePoints", HOLD, input={"holdId": hold_id})
        capture = await mutate(client, pos_key, "loyaltyCapturePoints", HOLD, input={"holdId": hold_id})
        release = await mutate(client, pos_key, "loyaltyReleasePoints", HOLD, input={"holdId": hold_id})
        assert capture["hold"] is None and release["hold"] is None
        assert [e["code"] for e in capture["userErrors"] + release["userErrors"]] == [
            "hold_not_active",
            "hold_not_active",
        ]
        unknown = await mutate(
            client, pos_key, "loyaltyCapturePoints", HOLD, input={"holdId": str(uuid.uuid4())}
        )
        assert [e["code"] for e in unknown["userErrors"]] == ["hold_not_found"]
        assert await _balance(client, pos_key, mine) == 1_000


class TestRefund:
    async def test_refunds_what_rest_refunds(self, client: httpx.AsyncClient, pos_key: str) -> None:
        mine, theirs = await _two_members_with_points(client, pos_key)
        for member_id, order_ref in ((mine, "GF-1"), (theirs, "GF-1-rest")):
            await _rest(
                client,
                pos_key,
                f"/v1/members/{member_id}/redeem",
                {"points": 400, "order_ref": order_ref, "order_total": cny(10_000)},
            )
        payload = await mutate(
            client, pos_key, "loyaltyRefundPoints", REFUND, input={"orderRef": "GF-1", "amount": cny(5_000)}
        )
        rest = await _rest(client, pos_key, "/v1/orders/GF-1-rest/refund", {"amount": cny(5_000)})
        refund = payload["refund"]
        assert payload["userErrors"] == []
        assert refund == {
            "orderRef": "GF-1",
            "memberId": mine,
            "refundedBy": rest["refunded_by"],
            "refunded": rest["refunded"],
            "refundedTotal": rest["refunded_total"],
            "orderTotal": rest["order_total"],
            "pointsTakenBack": rest["points_taken_back"],
            "pointsGivenBack": rest["points_given_back"],
            "shortfall": rest["shortfall"],
            "pointsRefundable": rest["points_refundable"],
            "balance": rest["balance"],
            "available": rest["available"],
        }
        assert (refund["refundedBy"], refund["pointsGivenBack"], refund["balance"]) == ("amount", 200, 800)

        full = await mutate(
            client, pos_key, "loyaltyRefundPoints", REFUND, input={"orderRef": "GF-1", "full": True}
        )
        assert (full["refund"]["refundedBy"], full["refund"]["pointsRefundable"]) == ("full", 0)
        assert await _balance(client, pos_key, mine) == 1_000
        # Refused again, with what REST's problem adds (how much is left to refund) in `details`.
        again = await graphql(
            client,
            pos_key,
            'mutation { loyaltyRefundPoints(input: {orderRef: "GF-1", full: true}) '
            "{ userErrors { code details } } }",
        )
        rest_again = await client.post("/v1/orders/GF-1/refund", json={"full": True}, headers=bearer(pos_key))
        [error] = again["data"]["loyaltyRefundPoints"]["userErrors"]
        assert error["code"] == rest_again.json()["code"] == "refund_exceeds_order"
        assert error["details"] == {"refundable": 0, "refundable_points": 0}
        assert {k: rest_again.json()[k] for k in error["details"]} == error["details"]

    async def test_refund_input_is_checked_by_the_rest_rules(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        mine, _ = await _two_members_with_points(client, pos_key)
        await _rest(client, pos_key, f"/v1/members/{mine}/redeem", {"points": 100, "order_ref": "GF-2"})
        both = await mutate(
            client,
            pos_key,
            "loyaltyRefundPoints",
            REFUND,
            input={"orderRef": "GF-2", "points": 10, "full": True},
        )
        assert both["refund"] is None
        assert [e["code"] for e in both["userErrors"]] == ["validation_error"]
        assert "exactly one" in both["userErrors"][0]["message"]
        by_amount = await mutate(
            client, pos_key, "loyaltyRefundPoints", REFUND, input={"orderRef": "GF-2", "amount": cny(100)}
        )
        assert [e["code"] for e in by_amount["userErrors"]] == ["order_total_unknown"]
        unknown = await mutate(
            client, pos_key, "loyaltyRefundPoints", REFUND, input={"orderRef": "GF-9", "full": True}
        )
        assert [e["code"] for e in unknown["userErrors"]] == ["order_not_found"]
        assert await _balance(client, pos_key, mine) == 900


class TestAdjust:
    async def test_adjusts_as_rest_does_and_the_ledger_keeps_the_reason(
        self, client: httpx.AsyncClient, pos_key: str, admin_key: str
    ) -> None:
        mine, theirs = await _two_members_with_points(client, pos_key)
        payload = await mutate(
            client,
            admin_key,
            "loyaltyAdjustPoints",
            ADJUSTMENT,
            input={"memberId": mine, "points": -250, "reason": "duplicate earn"},
        )
        rest = await _rest(
            client,
            admin_key,
            f"/v1/members/{theirs}/adjustments",
            {"points": -250, "reason": "duplicate earn"},
        )
        adjustment = payload["adjustment"]
        assert payload["userErrors"] == []
        assert {k: adjustment[k] for k in ("points", "reason", "balance", "available")} == {
            "points": rest["points"],
            "reason": rest["reason"],
            "balance": rest["balance"],
            "available": rest["available"],
        }
        assert adjustment["balance"] == 750
        ledger = (await client.get(f"/v1/members/{mine}/ledger", headers=bearer(pos_key))).json()["items"]
        assert (ledger[0]["id"], ledger[0]["type"], ledger[0]["amount"]) == (
            adjustment["entryId"],
            "adjust",
            -250,
        )

    async def test_only_admin_keys_adjust(
        self, client: httpx.AsyncClient, pos_key: str, ecommerce_key: str, billing_key: str
    ) -> None:
        mine, _ = await _two_members_with_points(client, pos_key)
        query = (
            "mutation($input: AdjustPointsInput!) { loyaltyAdjustPoints(input: $input) "
            f"{{ {ADJUSTMENT} {USER_ERRORS} }} }}"
        )
        for key in (pos_key, ecommerce_key, billing_key):
            body = await graphql(
                client, key, query, input={"memberId": mine, "points": 500, "reason": "gift"}
            )
            assert body["data"] == {"loyaltyAdjustPoints": None}
            assert [e["extensions"]["code"] for e in body["errors"]] == ["scope_not_allowed"]
        assert await _balance(client, pos_key, mine) == 1_000

    async def test_zero_points_and_too_many_taken_are_refused_as_rest_refuses_them(
        self, client: httpx.AsyncClient, pos_key: str, admin_key: str
    ) -> None:
        mine, _ = await _two_members_with_points(client, pos_key)
        zero = await mutate(
            client,
            admin_key,
            "loyaltyAdjustPoints",
            ADJUSTMENT,
            input={"memberId": mine, "points": 0, "reason": "x"},
        )
        assert [(e["field"], e["code"]) for e in zero["userErrors"]] == [("points", "validation_error")]
        too_many = await mutate(
            client,
            admin_key,
            "loyaltyAdjustPoints",
            ADJUSTMENT,
            input={"memberId": mine, "points": -1_001, "reason": "x"},
        )
        assert [e["code"] for e in too_many["userErrors"]] == ["insufficient_points"]
        assert await _balance(client, pos_key, mine) == 1_000

    async def test_points_a_hair_past_whole_are_refused_and_whole_ones_written_otherwise_taken_as_rest_does(
        self, client: httpx.AsyncClient, pos_key: str, admin_key: str
    ) -> None:
        """1000.00000000000001 is no whole number, though a float rounds it to 1000: REST refuses it for an
        integer field, so a `Long` variable does too, with the error a fraction gets. 1000.0 and 1e3 are
        1000 on both. (Sent as text: Python's json would write the float as 1000.0.)"""
        mine, theirs = await _two_members_with_points(client, pos_key)
        query = (
            "mutation($points: Long!) { loyaltyAdjustPoints(input: "
            f'{{memberId: "{mine}", points: $points, reason: "gift"}}) {{ {ADJUSTMENT} {USER_ERRORS} }} }}'
        )
        headers = {**bearer(admin_key), "Content-Type": "application/json"}

        async def adjust(points: str) -> tuple[httpx.Response, httpx.Response]:
            variables = f'{{"query": {json.dumps(query)}, "variables": {{"points": {points}}}}}'
            by_graphql = await client.post("/graphql", content=variables, headers=headers)
            by_rest = await client.post(
                f"/v1/members/{theirs}/adjustments",
                content=f'{{"points": {points}, "reason": "gift"}}',
                headers=headers,
            )
            return by_graphql, by_rest

        by_graphql, by_rest = await adjust("1000.00000000000001")
        assert by_rest.status_code == 422, by_rest.text
        body = by_graphql.json()
        assert body.get("data") is None, body
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
        assert "must be a whole number" in body["errors"][0]["message"], body
        assert await _balance(client, pos_key, mine) == await _balance(client, pos_key, theirs) == 1_000

        for written in ("1000.0", "1e3", "1.000E+3"):
            by_graphql, by_rest = await adjust(written)
            assert by_rest.status_code == 201 and by_rest.json()["points"] == 1_000, by_rest.text
            payload = by_graphql.json()["data"]["loyaltyAdjustPoints"]
            assert payload["userErrors"] == [] and payload["adjustment"]["points"] == 1_000, written
        assert await _balance(client, pos_key, mine) == await _balance(client, pos_key, theirs) == 4_000

    async def test_an_int_a_hair_past_whole_is_refused_as_a_fraction_is(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """GraphQL's own Int read the same rounded float as 20: it refuses the number as it refuses 20.5."""
        query = "query($first: Int!) { loyaltyMembers(first: $first) { edges { node { id } } } }"
        for written in ("20.000000000000001", "20.5"):
            body = (
                await client.post(
                    "/graphql",
                    content=f'{{"query": {json.dumps(query)}, "variables": {{"first": {written}}}}}',
                    headers={**bearer(admin_key), "Content-Type": "application/json"},
                )
            ).json()
            assert body.get("data") is None, (written, body)
            assert f"Int cannot represent non-integer value: {written}" in body["errors"][0]["message"]
        whole = await graphql(client, admin_key, query, first=2e1)
        assert "errors" not in whole, whole
        # A query by GET names its variables in the query string, read the same way.
        by_get = await client.get(
            "/graphql",
            params={"query": query, "variables": '{"first": 20.000000000000001}'},
            headers=bearer(admin_key),
        )
        assert by_get.json().get("data") is None, by_get.text
        assert "Int cannot represent non-integer value" in by_get.json()["errors"][0]["message"]


class TestSeveralMutationsInOneDocument:
    async def test_a_later_payload_reads_what_the_earlier_mutations_changed(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        query = """mutation($id: ID!, $earn: EarnPointsInput!) {
          before: loyaltyUpdateMember(input: {memberId: $id, name: "Before"}) {
            member { pointsAccount { balance } }
          }
          earn: loyaltyEarnPoints(input: $earn) { earned { balance } }
          after: loyaltyUpdateMember(input: {memberId: $id, name: "After"}) {
            member { name pointsAccount { balance } }
          }
        }"""
        body = await graphql(client, pos_key, query, id=member["id"], earn=_earn(member["id"], "G-M1"))
        assert "errors" not in body, body
        data = body["data"]
        assert data["before"]["member"]["pointsAccount"]["balance"] == 0
        earned = data["earn"]["earned"]["balance"]
        assert earned > 0
        assert data["after"]["member"] == {"name": "After", "pointsAccount": {"balance": earned}}


class TestAdjustReason:
    """What the ledger and the audit trail show of an adjustment: a reason a person can read."""

    async def test_a_blank_reason_is_refused_naming_it(
        self, client: httpx.AsyncClient, pos_key: str, admin_key: str
    ) -> None:
        mine, _ = await _two_members_with_points(client, pos_key)
        for reason in ("   ", "\u3000", "\u200b"):
            payload = await mutate(
                client,
                admin_key,
                "loyaltyAdjustPoints",
                ADJUSTMENT,
                input={"memberId": mine, "points": 500, "reason": reason},
            )
            assert payload["adjustment"] is None
            assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
                ("reason", "validation_error")
            ], reason
        assert await _balance(client, pos_key, mine) == 1_000

    async def test_a_bidi_override_in_the_reason_is_refused(
        self, client: httpx.AsyncClient, pos_key: str, admin_key: str
    ) -> None:
        mine, _ = await _two_members_with_points(client, pos_key)
        payload = await mutate(
            client,
            admin_key,
            "loyaltyAdjustPoints",
            ADJUSTMENT,
            input={"memberId": mine, "points": 500, "reason": "gift \u202edecnawa\u202c"},
        )
        assert payload["adjustment"] is None
        assert [e["code"] for e in payload["userErrors"]] == ["validation_error"]
        assert await _balance(client, pos_key, mine) == 1_000
