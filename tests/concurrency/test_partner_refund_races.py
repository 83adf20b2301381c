"""A partner's refund of a former customer's purchase under a reference the partner has given to another
customer since touches two members: the one the reference names now (whose row the link is read behind) and
the one the purchase was made by (whose points it takes back). It locks them in ascending member order, as a
transfer between the same two members does, so the two never deadlock; the ledger invariant holds."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Uuid, bindparam, text
from sqlalchemy.exc import DBAPIError

from tests.builders import enrol
from tests.conftest import bearer, units_of
from tests.databases import is_postgres
from tests.inspect_db import rows
from tests.ledger_checks import assert_ledger_invariant
from tests.partners.helpers import link, partner_earn, partner_refund, register_partner
from tests.points.helpers import earn, points, set_program

pytestmark = pytest.mark.skipif(not is_postgres(), reason="row locks: SQLite has one writer at a time")

# What a transfer takes of each of its members, the lower id first (points.repository.lock_with_member).
_LOCK_PARTY = text(
    "SELECT 1 FROM members JOIN points_accounts ON points_accounts.member_id = members.id"
    " WHERE members.id = :m FOR NO KEY UPDATE"
).bindparams(bindparam("m", type_=Uuid()))


async def _reference_given_again(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, *, purchases: int
) -> tuple[str, str, str]:
    """The partner's customer C-1 was the lower member, who bought `purchases` times (O-1, O-2, ...) of 100
    yuan (150 points each) and unlinked; C-1 is the higher member now. Returns (key, lower, higher)."""
    await set_program(client, admin_key, transfers_enabled=True)
    key = await register_partner(app, client, admin_key, "cafe", earn_rate="1.5")
    low, high = sorted([str((await enrol(client, pos_key))["id"]) for _ in range(2)], key=uuid.UUID)
    await link(client, pos_key, key, low, "cafe", "C-1", "basic", "points")
    for n in range(1, purchases + 1):
        assert (await partner_earn(client, key, "C-1", f"O-{n}", 10_000)).status_code == 201
    unlinked = await client.delete("/v1/partner/links/C-1", headers=bearer(key))
    assert unlinked.status_code == 204, unlinked.text
    await link(client, pos_key, key, high, "cafe", "C-1", "basic", "points")
    return key, low, high


async def test_a_refund_under_a_reference_given_again_and_a_transfer_lock_members_in_one_order(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    """The refund read the link behind the higher member's row (the reference's customer now) and then took
    the lower member's points: with a transfer between the two holding the lower member and waiting for the
    higher, the two deadlocked and PostgreSQL cancelled one of them."""
    key, low, high = await _reference_given_again(app, client, admin_key, pos_key, purchases=1)
    deadlocked = False
    async with units_of(app).database.engine.connect() as transfer:
        await transfer.execute(_LOCK_PARTY, {"m": uuid.UUID(low)})  # as a transfer between them begins
        refund = asyncio.ensure_future(partner_refund(client, key, "C-1", "O-1", full=True))
        for _ in range(3_000):  # until the refund waits for a lock the transfer holds
            if refund.done() or await rows(app, "SELECT 1 FROM pg_locks WHERE NOT granted"):
                break
            await asyncio.sleep(0.01)
        try:
            await transfer.execute(_LOCK_PARTY, {"m": uuid.UUID(high)})  # the transfer's second lock
        except DBAPIError:
            deadlocked = True
        await transfer.rollback()
    answer = await refund
    assert not deadlocked, "the transfer was cancelled: the refund held the higher member's row"
    assert answer.status_code == 200, answer.text
    assert answer.json()["points_reversed"] == 150
    await assert_ledger_invariant(app)


async def test_refunds_under_a_reference_given_again_and_transfers_both_ways_at_once(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, ecommerce_key: str
) -> None:
    """Many at once: refunds of the former customer's purchases under the reference given again, and
    transfers between the former and the new customer both ways. None fails for a lock; no point is lost."""
    key, low, high = await _reference_given_again(app, client, admin_key, pos_key, purchases=8)
    for member in (low, high):
        await earn(client, pos_key, member, 100_000)  # 1,000 points each to send

    async def send(sender: str, recipient: str) -> httpx.Response:
        return await client.post(
            f"/v1/members/{sender}/transfers",
            json={"to_member_id": recipient, "points": 30},
            headers=bearer(ecommerce_key),
        )

    refunds = [partner_refund(client, key, "C-1", f"O-{n}", full=True) for n in range(1, 9)]
    transfers = [send(low, high) if n % 2 else send(high, low) for n in range(16)]
    calls = [call for pair in zip(transfers[:8], refunds, strict=True) for call in pair] + transfers[8:]
    answers = await asyncio.gather(*calls)
    outcomes = Counter((a.status_code, a.json().get("code")) for a in answers)
    assert outcomes == {(200, None): 8, (201, None): 16}, outcomes
    # The lower member's purchases are all taken back; the transfers cancel out (8 each way).
    balances = [(await points(client, pos_key, m))["balance"] for m in (low, high)]
    assert balances == [1_000, 1_000]
    await assert_ledger_invariant(app)
