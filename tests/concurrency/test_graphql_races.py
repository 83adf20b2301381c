"""Mutations racing for one member over GraphQL keep REST's guarantees: nothing is overspent, and one
Idempotency key earns once however many retries arrive at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
from fastapi import FastAPI

from tests.builders import enrol
from tests.graphql.helpers import USER_ERRORS, graphql
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import earn, points, set_program

REDEEM = f"""mutation($input: RedeemPointsInput!) {{ loyaltyRedeemPoints(input: $input) {{
  redeemed {{ pointsRedeemed }} {USER_ERRORS} }} }}"""
EARN = f"""mutation($input: EarnPointsInput!, $key: String) {{
  loyaltyEarnPoints(input: $input, idempotencyKey: $key) {{
    earned {{ pointsEarned }} replayed {USER_ERRORS}
  }}
}}"""


def _outcome(payload: dict[str, Any]) -> str:
    return payload["userErrors"][0]["code"] if payload["userErrors"] else "done"


class TestGraphQLRaces:
    async def test_fifty_redeems_for_ten_redeems_worth_of_points(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)  # 1,000 points

        async def redeem(n: int) -> dict[str, Any]:
            body = await graphql(
                client,
                pos_key,
                REDEEM,
                input={"memberId": member["id"], "points": 100, "orderRef": f"GR-{n}"},
            )
            assert "errors" not in body, body
            payload: dict[str, Any] = body["data"]["loyaltyRedeemPoints"]
            return payload

        answers = await asyncio.gather(*(redeem(n) for n in range(50)))
        assert Counter(_outcome(a) for a in answers) == {"done": 10, "insufficient_points": 40}
        assert (await points(client, pos_key, member["id"]))["balance"] == 0
        await assert_ledger_invariant(app, member["id"])

    async def test_retries_with_one_key_earn_once(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        purchase = {
            "memberId": member["id"],
            "orderRef": "GR-E",
            "amount": {"amount": 10_000, "currency": "CNY"},
        }

        async def attempt() -> dict[str, Any]:
            body = await graphql(client, pos_key, EARN, input=purchase, key="till-9/receipt-77")
            assert "errors" not in body, body
            payload: dict[str, Any] = body["data"]["loyaltyEarnPoints"]
            return payload

        answers = await asyncio.gather(*(attempt() for _ in range(20)))
        earned = [a for a in answers if a["earned"] is not None]
        first = [a for a in earned if not a["replayed"]]
        assert len(first) == 1  # the one that did the work; the others replayed it or found it in flight
        assert all(a["earned"] == first[0]["earned"] for a in earned)
        assert {_outcome(a) for a in answers if a["earned"] is None} <= {"idempotency_request_in_flight"}
        assert (await points(client, pos_key, member["id"]))["balance"] == first[0]["earned"]["pointsEarned"]
        await assert_ledger_invariant(app, member["id"])
