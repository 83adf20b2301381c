"""Points mutations give REST's answers under REST's rules, idempotency included."""

from __future__ import annotations

import uuid

import httpx

from tests.builders import enrol
from tests.conftest import bearer
from tests.graphql.helpers import mutate

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
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [("amount", "validation_error")]
        unknown = await mutate(
            client, pos_key, "loyaltyEarnPoints", EARNED, input=_earn(str(uuid.uuid4()), "G-7")
        )
        assert [e["code"] for e in unknown["userErrors"]] == ["member_not_found"]
        points = await client.get(f"/v1/members/{member['id']}/points", headers=bearer(pos_key))
        assert points.json()["balance"] == 0
