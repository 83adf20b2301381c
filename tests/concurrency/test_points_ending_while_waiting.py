"""Points that reach their end while a change waits for the member's lock are gone when it gets the lock, as
they are for a change that did not wait: a spend is stamped behind the lock, so it must not find points
past their end there (PostgreSQL; on SQLite a write waits at its BEGIN, before it reads the time)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.settings import Settings
from tests.builders import enrol
from tests.conftest import bearer
from tests.databases import account_locked, is_postgres, until_waiting_for_a_lock
from tests.inspect_db import rows
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import cny, earn, points, set_program

pytestmark = pytest.mark.skipif(not is_postgres(), reason="SQLite has no row locks: its writers take turns")


async def _member_with_points_ending(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
) -> tuple[str, datetime]:
    """A member with 100 points that end first and 30 that end a day later; when the 100 end."""
    await set_program(client, admin_key, expiry_months=12)
    member_id = str((await enrol(client, pos_key))["id"])
    await earn(client, pos_key, member_id, 10_000, order_ref="FIRST")
    clock.advance(timedelta(days=1))
    await earn(client, pos_key, member_id, 3_000, order_ref="SECOND")
    found = await rows(
        app,
        "SELECT expires_at FROM point_lots WHERE member_id = :m ORDER BY expires_at",
        m=uuid.UUID(member_id),
    )
    ends: datetime = found[0]["expires_at"]
    return member_id, ends


async def _sent_across_the_end(
    settings: Settings,
    client: httpx.AsyncClient,
    clock: FrozenClock,
    key: str,
    locked: str,
    ends: datetime,
    path: str,
    body: dict[str, object],
) -> httpx.Response:
    """`body` posted to `path` a minute before points end, while the `locked` member's account is locked;
    the lock let go a minute after the points ended."""
    clock.set(ends - timedelta(minutes=1))
    async with account_locked(settings, locked) as watcher:
        sent = asyncio.ensure_future(client.post(path, json=body, headers=bearer(key)))
        await until_waiting_for_a_lock(watcher, sent)
        clock.set(ends + timedelta(minutes=1))  # the 100 end while it waits
    return await sent


class TestPointsEndingWhileAChangeWaits:
    @pytest.mark.parametrize(
        ("operator", "path", "body"),
        [
            (False, "redeem", {"points": 50, "order_ref": "SPEND"}),
            # An operator takes 50 points away while the 100 end: as for a redeem, only the 30 are there.
            (True, "adjustments", {"points": -50, "reason": "goodwill given twice"}),
        ],
        ids=["redeem", "adjustment"],
    )
    async def test_a_spend_cannot_take_them(
        self,
        app: FastAPI,
        settings: Settings,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
        operator: bool,
        path: str,
        body: dict[str, object],
    ) -> None:
        member_id, ends = await _member_with_points_ending(app, client, admin_key, pos_key, clock)
        key = admin_key if operator else pos_key
        url = f"/v1/members/{member_id}/{path}"
        response = await _sent_across_the_end(settings, client, clock, key, member_id, ends, url, body)
        # Stamped after the 100 ended: only the 30 are there to spend.
        assert response.status_code == 422, response.text
        assert (response.json()["code"], response.json()["available"]) == ("insufficient_points", 30)
        assert (await points(client, pos_key, member_id))["balance"] == 30
        await assert_ledger_invariant(app, member_id)

    async def test_an_earns_answer_does_not_count_them(
        self,
        app: FastAPI,
        settings: Settings,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
    ) -> None:
        member_id, ends = await _member_with_points_ending(app, client, admin_key, pos_key, clock)
        body = {"order_ref": "LATER", "amount": cny(1_000)}
        path = f"/v1/members/{member_id}/earn"
        response = await _sent_across_the_end(settings, client, clock, pos_key, member_id, ends, path, body)
        assert response.status_code == 200, response.text
        # The answer is what a read shows: the 30 and the 10 just earned.
        assert response.json()["balance"] == 40
        assert (await points(client, pos_key, member_id))["balance"] == 40
        await assert_ledger_invariant(app, member_id)

    async def test_a_transfer_reversal_gives_back_none_of_them(
        self,
        app: FastAPI,
        settings: Settings,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
    ) -> None:
        """The 100 sent end while the reversal waits for the recipient's account: they would have expired
        with the sender too, so nothing is owed. Judged by a time read before the wait, the reversal took
        100 of the recipient's own points and gave the sender 100 already past their end."""
        await set_program(client, admin_key, expiry_months=12, transfers_enabled=True)
        sender, recipient = [str((await enrol(client, pos_key))["id"]) for _ in range(2)]
        await earn(client, pos_key, sender, 10_000, order_ref="SENT")
        sent = await client.post(
            f"/v1/members/{sender}/transfers",
            json={"to_member_id": recipient, "points": 100},
            headers=bearer(admin_key),
        )
        assert sent.status_code == 201, sent.text
        clock.advance(timedelta(days=1))
        await earn(client, pos_key, recipient, 20_000, order_ref="OWN")  # 200 of their own, ending later
        found = await rows(
            app, "SELECT min(expires_at) AS ends FROM point_lots WHERE member_id = :m", m=uuid.UUID(recipient)
        )
        ends: datetime = found[0]["ends"]
        path = f"/v1/members/{sender}/transfers/{sent.json()['transfer_id']}/reversal"
        body = {"reason": "sent to the wrong member"}
        response = await _sent_across_the_end(settings, client, clock, admin_key, recipient, ends, path, body)
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "transfer_expired"
        assert (await points(client, pos_key, recipient))["balance"] == 200
        assert (await points(client, pos_key, sender))["balance"] == 0
        for member_id in (sender, recipient):
            await assert_ledger_invariant(app, member_id)

    async def test_a_refund_takes_back_none_of_them(
        self,
        app: FastAPI,
        settings: Settings,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
    ) -> None:
        """The first order is refunded in full while the 100 it earned end: they expired, so the refund has
        nothing of them left to take back, as one sent a moment later says."""
        member_id, ends = await _member_with_points_ending(app, client, admin_key, pos_key, clock)
        path = "/v1/orders/FIRST/refund"
        response = await _sent_across_the_end(
            settings, client, clock, pos_key, member_id, ends, path, {"full": True}
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        assert (answer["points_taken_back"], answer["already_expired"], answer["balance"]) == (0, 100, 30)
        assert (await points(client, pos_key, member_id))["balance"] == 30
        await assert_ledger_invariant(app, member_id)
