"""Transfers between members under simultaneous requests: members sending to one another in a ring and both
ways at once neither deadlock nor lose a point, and a member's daily limit holds however many transfers
arrive together; the ledger invariant holds for everyone."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Uuid, bindparam, text

from tests.builders import add_tier, enrol, unique_phone
from tests.conftest import bearer, units_of
from tests.databases import is_postgres
from tests.inspect_db import rows
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import earn, points, set_program


async def _members(client: httpx.AsyncClient, pos_key: str, n: int, *, each: int) -> list[str]:
    members = [str((await enrol(client, pos_key))["id"]) for _ in range(n)]
    for member in members:
        await earn(client, pos_key, member, each * 100)
    return members


async def test_members_sending_to_one_another_at_once_lose_no_point(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, ecommerce_key: str
) -> None:
    await set_program(client, admin_key, transfers_enabled=True)
    members = await _members(client, pos_key, 3, each=500)
    # Each member sends to both others, ten times each: rings (a → b → c → a) and pairs both ways at once.
    pairs = [(a, b) for a in members for b in members if a != b] * 10

    async def send(sender: str, recipient: str) -> httpx.Response:
        return await client.post(
            f"/v1/members/{sender}/transfers",
            json={"to_member_id": recipient, "points": 40},
            headers=bearer(ecommerce_key),
        )

    answers = await asyncio.gather(*(send(a, b) for a, b in pairs))
    outcomes = Counter((a.status_code, a.json().get("code")) for a in answers)
    assert set(outcomes) <= {(201, None), (422, "insufficient_points")}, outcomes
    assert outcomes[(201, None)] >= len(pairs) // 2
    balances = [(await points(client, pos_key, m))["balance"] for m in members]
    assert sum(balances) == 3 * 500
    sent = Counter(str(a.json()["from_member_id"]) for a in answers if a.status_code == 201)
    received = Counter(str(a.json()["to_member_id"]) for a in answers if a.status_code == 201)
    assert balances == [500 - 40 * sent[m] + 40 * received[m] for m in members]
    entries = await rows(app, "SELECT type, COUNT(*) AS n FROM ledger_entries GROUP BY type")
    counted = {row["type"]: row["n"] for row in entries}
    assert counted["transfer_out"] == counted["transfer_in"] == outcomes[(201, None)]
    for member in members:
        await assert_ledger_invariant(app, member)


async def test_a_members_daily_limit_holds_when_transfers_arrive_together(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, ecommerce_key: str
) -> None:
    await set_program(client, admin_key, transfers_enabled=True, transfer_daily_limit=500)
    sender, *recipients = await _members(client, pos_key, 5, each=2_000)

    async def send(recipient: str) -> httpx.Response:
        return await client.post(
            f"/v1/members/{sender}/transfers",
            json={"to_member_id": recipient, "points": 100},
            headers=bearer(ecommerce_key),
        )

    answers = await asyncio.gather(*(send(r) for r in recipients * 3))
    outcomes = Counter((a.status_code, a.json().get("code")) for a in answers)
    assert outcomes == {(201, None): 5, (422, "transfer_limit_exceeded"): 7}
    assert (await points(client, pos_key, sender))["balance"] == 2_000 - 500
    for member in (sender, *recipients):
        await assert_ledger_invariant(app, member)


@pytest.mark.skipif(not is_postgres(), reason="holds members' rows from a second PostgreSQL connection")
async def test_a_ladder_change_and_a_transfer_lock_members_in_one_order(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    """A new tier under the entry tier dates every member of the old one. Its members were updated in the
    order the table held them, while a transfer locks its two members in ascending id order: with the lower
    member's row moved to the table's end, the two deadlocked, and one of them was a 500."""
    await set_program(client, admin_key, transfers_enabled=True)
    await add_tier(client, admin_key, "silver", rank=1)
    low, high = sorted([str((await enrol(client, pos_key))["id"]) for _ in range(2)])
    # A new phone (an indexed column): the lower member's row, and its index entries, now come after the
    # higher's, so a statement that meets rows in the table's order locks the higher first.
    new_phone = {"phone": unique_phone()}
    moved = await client.patch(f"/v1/members/{low}", json=new_phone, headers=bearer(admin_key))
    assert moved.status_code == 200, moved.text
    lock = text("SELECT 1 FROM members WHERE id = :m FOR NO KEY UPDATE").bindparams(
        bindparam("m", type_=Uuid())
    )
    async with units_of(app).database.engine.connect() as transfer:
        await transfer.execute(lock, {"m": uuid.UUID(low)})  # as a transfer from `low` to `high` begins
        change = asyncio.ensure_future(
            client.post(
                "/v1/tiers",
                json={
                    "code": "basic",
                    "name": "Basic",
                    "rank": 0,
                    "metric": "spend",
                    "window": "calendar_year",
                    "threshold": 0,
                    "points_multiplier": "1",
                    "grace_days": 0,
                    "benefit_ids": [],
                },
                headers=bearer(admin_key),
            )
        )
        for _ in range(3_000):  # until the ladder change waits for `low`'s row
            if change.done() or await rows(app, "SELECT 1 FROM pg_locks WHERE NOT granted"):
                break
            await asyncio.sleep(0.01)
        await transfer.execute(lock, {"m": uuid.UUID(high)})  # the transfer's second lock
        await transfer.rollback()
    answer = await change
    assert answer.status_code == 201, answer.text
