"""Referrals: a referred member's first purchase of at least the programme's minimum gives them and the member
who referred them the programme's points, once each; the friend's with the earn, the referrer's by the
referral job; a referrer who is not active gets nothing, and cannot refer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.points.referrals import credit_referrers
from tests.builders import enrol
from tests.concurrency.test_earn_races import all_at_once
from tests.conftest import bearer, units_of
from tests.inspect_db import events, rows
from tests.ledger_checks import assert_ledger_invariant
from tests.partners.helpers import ledger
from tests.points.helpers import earn, points, set_program

REFERRAL = {
    "referral_friend_points": 200,
    "referral_referrer_points": 500,
    "referral_min_purchase_minor": 5_000,
}


async def pair(client: httpx.AsyncClient, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    referrer = await enrol(client, key)
    friend = await enrol(client, key, referral_code=referrer["referral_code"])
    assert friend["referred_by"] == referrer["id"]
    return referrer, friend


async def referral_entries(client: httpx.AsyncClient, key: str, member_id: str) -> list[dict[str, Any]]:
    return [e for e in await ledger(client, key, member_id) if e["type"] == "referral"]


async def rewarded(app: FastAPI, member_id: str) -> list[tuple[str, int]]:
    return [
        (e["payload"]["role"], e["payload"]["points"])
        for e in await events(app, "referral.rewarded")
        if e["payload"]["member_id"] == member_id
    ]


class TestRewards:
    async def test_the_first_qualifying_purchase_rewards_both_once(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key, **REFERRAL)
        referrer, friend = await pair(client, pos_key)
        small = await earn(client, pos_key, friend["id"], 4_999)  # below the minimum: no reward yet
        assert small["balance"] == 49
        first = await earn(client, pos_key, friend["id"], 10_000)
        assert first["balance"] == 49 + 100 + 200  # the friend's points come with the earn
        assert (await points(client, pos_key, referrer["id"]))["balance"] == 0  # the referrer's, with the job
        assert await credit_referrers(units_of(app)) >= 1
        assert (await points(client, pos_key, referrer["id"]))["balance"] == 500
        # Again, and more purchases: nothing more for either.
        await earn(client, pos_key, friend["id"], 20_000)
        await credit_referrers(units_of(app))
        assert (await points(client, pos_key, referrer["id"]))["balance"] == 500
        assert (await points(client, pos_key, friend["id"]))["balance"] == 49 + 100 + 200 + 200
        assert [e["amount"] for e in await referral_entries(client, admin_key, friend["id"])] == [200]
        assert [e["amount"] for e in await referral_entries(client, admin_key, referrer["id"])] == [500]
        assert await rewarded(app, friend["id"]) == [("friend", 200)]
        assert await rewarded(app, referrer["id"]) == [("referrer", 500)]
        for member in (referrer, friend):
            await assert_ledger_invariant(app, member["id"])

    async def test_without_referral_points_nothing_is_recorded(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        referrer, friend = await pair(client, pos_key)
        assert (await earn(client, pos_key, friend["id"], 10_000))["balance"] == 100
        await credit_referrers(units_of(app))
        assert (await points(client, pos_key, referrer["id"]))["balance"] == 0
        found = await rows(
            app, "SELECT friend_id FROM referral_rewards WHERE friend_id = :f", f=_uuid(friend["id"])
        )
        assert found == []

    async def test_a_referrer_closed_before_the_job_gets_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key, **REFERRAL)
        referrer, friend = await pair(client, pos_key)
        await earn(client, pos_key, friend["id"], 10_000)
        closed = await client.patch(
            f"/v1/members/{referrer['id']}", json={"status": "closed"}, headers=bearer(admin_key)
        )
        assert closed.status_code == 200, closed.text
        await credit_referrers(units_of(app))
        assert (await points(client, admin_key, referrer["id"]))["balance"] == 0
        [reward] = await rows(
            app,
            "SELECT credited_at, referrer_credited FROM referral_rewards WHERE friend_id = :f",
            f=_uuid(friend["id"]),
        )
        assert reward["credited_at"] is not None and not reward["referrer_credited"]
        assert await credit_referrers(units_of(app)) == 0  # settled: never looked at again


class TestRefusals:
    @pytest.mark.parametrize("status", ["suspended", "closed"])
    async def test_only_an_active_member_refers(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, status: str
    ) -> None:
        referrer = await enrol(client, pos_key)
        changed = await client.patch(
            f"/v1/members/{referrer['id']}", json={"status": status}, headers=bearer(admin_key)
        )
        assert changed.status_code == 200, changed.text
        body = {"phone": "13700000001", "referral_code": referrer["referral_code"]}
        answer = await client.post("/v1/members", json=body, headers=bearer(pos_key))
        assert answer.status_code == 422
        assert answer.json()["code"] == "referrer_not_active"
        assert answer.json()["title"] == "The referring member is not active"

    async def test_an_erased_members_code_is_unknown(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        referrer = await enrol(client, pos_key)
        erased = await client.post(f"/v1/members/{referrer['id']}/erase", headers=bearer(admin_key))
        assert erased.status_code == 200, erased.text
        body = {"phone": "13700000001", "referral_code": referrer["referral_code"]}
        answer = await client.post("/v1/members", json=body, headers=bearer(pos_key))
        assert answer.status_code == 422
        assert answer.json()["code"] == "unknown_referral_code"  # not a hint that the code was someone's

    async def test_a_referral_cannot_loop_or_name_oneself(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        # The code is given once, at enrolment, and names a member who exists already: a member cannot name
        # themselves, and an existing member's referrer cannot be changed to make a loop.
        referrer, friend = await pair(client, pos_key)
        answer = await client.patch(
            f"/v1/members/{referrer['id']}",
            json={"referral_code": friend["referral_code"]},
            headers=bearer(pos_key),
        )
        assert answer.status_code == 422
        assert (await client.get(f"/v1/members/{referrer['id']}", headers=bearer(pos_key))).json()[
            "referred_by"
        ] is None


class TestConcurrency:
    async def test_simultaneous_first_purchases_reward_once(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key, **REFERRAL)
        referrer, friend = await pair(client, pos_key)
        purchases = [
            client.post(
                f"/v1/members/{friend['id']}/earn",
                json={"order_ref": f"REF-RACE-{n}", "amount": {"amount": 10_000, "currency": "CNY"}},
                headers=bearer(pos_key),
            )
            for n in range(12)
        ]
        answers = await all_at_once(app, [friend["id"]], purchases)
        assert [a.status_code for a in answers] == [200] * 12
        await asyncio.gather(*[credit_referrers(units_of(app)) for _ in range(3)])
        assert (await points(client, pos_key, friend["id"]))["balance"] == 12 * 100 + 200
        assert (await points(client, pos_key, referrer["id"]))["balance"] == 500
        for member in (referrer, friend):
            await assert_ledger_invariant(app, member["id"])


def _uuid(text: str) -> uuid.UUID:
    return uuid.UUID(text)
