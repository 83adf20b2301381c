"""The earn path under simultaneous requests: earns that lock the member and their account in one read and
write everything in one statement, racing spends, holds, refunds and adjustments that change the account
with a conditional UPDATE, and one order earned many times at once. Afterwards the books must agree:
balance == sum(ledger) == sum(live lots), each entry's balance_after is the one before it plus its amount,
and every reply said what was written.

On PostgreSQL the members' account rows are first locked from a connection of our own until the requests
pile up behind them, so they really race for them when they are let go; on SQLite `BEGIN IMMEDIATE`
serializes the requests, and the books must agree just the same."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from loyalty_api.clock import FrozenClock
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.settings import Settings
from tests.apps import serving
from tests.builders import add_tier, enrol
from tests.conftest import bearer
from tests.databases import is_postgres, side_engine
from tests.inspect_db import events, rows
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import cny, earn, points, set_program

Request = Coroutine[Any, Any, httpx.Response]

PILE_UP_DEADLINE_SECONDS = 10.0


def as_uuid(value: object) -> uuid.UUID:
    """An id as read back: a UUID on PostgreSQL, hex text on SQLite, hyphenated text from the API."""
    return uuid.UUID(str(value))


def outcomes(responses: Sequence[httpx.Response]) -> Counter[tuple[int, str | None]]:
    """(status, problem code) of each response; the code is None for a success."""
    return Counter((r.status_code, r.json()["code"] if r.is_error else None) for r in responses)


async def _waiting_for_locks(watcher: AsyncConnection, wanted: int) -> int:
    """How many of the test database's sessions wait for a lock, once `wanted` do (or at the deadline).
    Each poll awaits the server, so the requests run meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PILE_UP_DEADLINE_SECONDS
    while True:
        waiting = int(
            await watcher.scalar(
                text(
                    "SELECT COUNT(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            or 0
        )
        if waiting >= wanted or loop.time() > deadline:
            return waiting


async def all_at_once(
    app: FastAPI, member_ids: Sequence[str], requests: Sequence[Request]
) -> list[httpx.Response]:
    """Send the requests together. On PostgreSQL the members' account rows are locked first until as many
    requests as the app's pool holds (or all of them) wait for a lock, then let go at once."""
    if not is_postgres():
        return list(await asyncio.gather(*requests))
    units: UnitsOfWork = app.state.units
    wanted = min(len(requests), units.settings.database_pool_size)
    # Connections of our own: the app's pool is about to be taken by the waiting requests.
    engine = side_engine(units.settings)
    try:
        async with engine.connect() as gate, engine.connect() as watcher:
            # Autocommit: each poll sees pg_stat_activity afresh (a transaction would keep its first look).
            await watcher.execution_options(isolation_level="AUTOCOMMIT")
            for member_id in sorted(member_ids):
                await gate.execute(
                    text("SELECT 1 FROM points_accounts WHERE member_id = :m FOR UPDATE"),
                    {"m": uuid.UUID(member_id)},
                )
            tasks = [asyncio.ensure_future(request) for request in requests]
            try:
                waiting = await _waiting_for_locks(watcher, wanted)
            finally:
                await gate.rollback()
                responses = list(await asyncio.gather(*tasks))
    finally:
        await engine.dispose()
    assert waiting >= wanted, f"only {waiting} requests waited for the account lock, not {wanted}"
    return responses


async def ledger_oldest_first(client: httpx.AsyncClient, key: str, member_id: str) -> list[dict[str, Any]]:
    """The member's whole ledger as the API lists it (newest first, by id), turned oldest first."""
    listed = await client.get(f"/v1/members/{member_id}/ledger", params={"limit": 200}, headers=bearer(key))
    assert listed.status_code == 200, listed.text
    assert listed.json()["next_cursor"] is None
    return list(reversed(listed.json()["items"]))


async def assert_entries_chain(client: httpx.AsyncClient, key: str, member_id: str) -> list[dict[str, Any]]:
    """Ledger ids are time-ordered (strictly increasing within a process) and drawn behind the account's
    lock, so in id order each entry's balance_after and held_after are the previous ones plus its change,
    from the empty account enrolment opens to the account as it is now, and nothing was ever overspent."""
    entries = await ledger_oldest_first(client, key, member_id)
    balance = held = 0
    for position, entry in enumerate(entries):
        balance += entry["amount"]
        held += entry["held_change"]
        assert (entry["balance_after"], entry["held_after"]) == (balance, held), (position, entry)
        assert 0 <= entry["held_after"] <= entry["balance_after"], (position, entry)
    summary = await points(client, key, member_id)
    assert (summary["balance"], summary["held"]) == (balance, held)
    return entries


async def assert_earns_recorded_as_replied(
    app: FastAPI, entries: Sequence[dict[str, Any]], replies: Sequence[httpx.Response]
) -> None:
    """Each successful earn has one earn entry, one lot and one points.earned event for its order, all with
    the points and the balance its reply gave."""
    earn_entries = [entry for entry in entries if entry["type"] == "earn"]
    earned = {entry["order_ref"]: entry for entry in earn_entries}
    assert len(earned) == len(earn_entries), "an order earned twice"
    lots = await rows(app, "SELECT entry_id, order_ref, points, remaining FROM point_lots")
    lots_of = Counter(as_uuid(lot["entry_id"]) for lot in lots)
    lot_of = {as_uuid(lot["entry_id"]): lot for lot in lots}
    announced = [event["payload"] for event in await events(app, "points.earned")]
    announcements = Counter(payload["order_ref"] for payload in announced)
    payloads = {payload["order_ref"]: payload for payload in announced}
    for reply in replies:
        body = reply.json()
        entry = earned[body["order_ref"]]
        assert (entry["amount"], entry["balance_after"]) == (body["points_earned"], body["balance"]), body
        assert entry["balance_after"] - entry["held_after"] == body["available"], body
        assert lots_of[as_uuid(entry["id"])] == 1, body
        lot = lot_of[as_uuid(entry["id"])]
        assert (lot["order_ref"], lot["points"]) == (body["order_ref"], body["points_earned"]), body
        assert announcements[body["order_ref"]] == 1, body
        payload = payloads[body["order_ref"]]
        assert (payload["points"], payload["balance"]) == (body["points_earned"], body["balance"]), payload


@pytest.fixture(autouse=True)
async def _program(client: httpx.AsyncClient, admin_key: str) -> None:
    await set_program(client, admin_key)  # 1 point per 100 minor units, rounded down


class TestEarnsRacingSpends:
    async def test_earns_redeems_and_holds_at_once_keep_one_chain_of_balances(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        # A tier upgrade mid-race (the member's row changes too) and earns that earn more after it.
        await add_tier(client, admin_key, "member", rank=0)
        await add_tier(client, admin_key, "silver", rank=1, threshold=150_000, points_multiplier="2")
        member_id = str((await enrol(client, pos_key))["id"])
        await earn(client, pos_key, member_id, 50_000, order_ref="START")  # 500 points

        def earn_order(n: int) -> Request:
            body = {"order_ref": f"E-{n}", "amount": cny((n + 1) * 1_000)}  # 10·(n+1) points before silver
            return client.post(f"/v1/members/{member_id}/earn", json=body, headers=bearer(pos_key))

        def redeem(n: int) -> Request:
            body = {"points": 200, "order_ref": f"R-{n}"}
            return client.post(f"/v1/members/{member_id}/redeem", json=body, headers=bearer(pos_key))

        def hold(n: int) -> Request:
            body = {"points": 300, "order_ref": f"H-{n}"}
            return client.post(f"/v1/members/{member_id}/holds", json=body, headers=bearer(pos_key))

        # Interleaved: earn, redeem, earn, redeem, … with a hold every fourth pair.
        requests: list[Request] = []
        for n in range(20):
            requests += [earn_order(n), redeem(n)]
            if n % 4 == 0:
                requests.append(hold(n))
        responses = await all_at_once(app, [member_id], requests)

        earns = [r for r in responses if r.request.url.path.endswith("/earn")]
        redeems = [r for r in responses if r.request.url.path.endswith("/redeem")]
        holds = [r for r in responses if r.request.url.path.endswith("/holds")]
        assert (len(earns), len(redeems), len(holds)) == (20, 20, 5)
        assert outcomes(earns) == {(200, None): 20}, [r.text for r in earns]
        refusal = (422, "insufficient_points")
        assert set(outcomes(redeems)) <= {(200, None), refusal}, [r.text for r in redeems]
        assert set(outcomes(holds)) <= {(201, None), refusal}, [r.text for r in holds]
        # At most 500 + 2·2100 points to spend for 20·200 + 5·300 asked: never all of it; the first spend
        # has the 500 to start with.
        refused = [r.json() for r in redeems + holds if r.status_code == 422]
        assert 0 < len(refused) < 25
        assert all(problem["available"] < problem["requested"] for problem in refused), refused

        earned = sum(r.json()["points_earned"] for r in earns)
        redeemed = 200 * sum(r.status_code == 200 for r in redeems)
        held = 300 * sum(r.status_code == 201 for r in holds)
        summary = await points(client, pos_key, member_id)
        assert (summary["balance"], summary["held"]) == (500 + earned - redeemed, held)
        assert summary["lifetime_earned"] == 500 + earned
        assert sum(r.json()["tier_changed"] for r in earns) == 1

        entries = await assert_entries_chain(client, pos_key, member_id)
        assert Counter(entry["type"] for entry in entries) == Counter(
            earn=21, redeem=redeemed // 200, hold=held // 300
        )
        await assert_earns_recorded_as_replied(app, entries, earns)
        by_order = {(entry["type"], entry["order_ref"]): entry for entry in entries}
        for reply in redeems:
            if reply.status_code == 200:
                assert (
                    by_order["redeem", reply.json()["order_ref"]]["balance_after"] == reply.json()["balance"]
                )
        for reply in holds:
            if reply.status_code == 201:
                entry = by_order["hold", reply.json()["order_ref"]]
                assert (entry["hold_id"], entry["balance_after"]) == (
                    reply.json()["id"],
                    reply.json()["balance"],
                )
        spent_on = {r.json()["order_ref"] for r in redeems + holds if r.status_code in (200, 201)}
        assert {o["order_ref"] for o in await rows(app, "SELECT order_ref FROM orders")} == {
            "START",
            *(f"E-{n}" for n in range(20)),
            *spent_on,
        }  # a refused spend claimed no order
        await assert_ledger_invariant(app, member_id)

    @pytest.mark.skipif(
        not is_postgres(), reason="SQLite's BEGIN IMMEDIATE: no earn reads its time and waits"
    )
    async def test_entries_are_stamped_in_the_order_the_ledger_has_them(
        self, settings: Settings, pos_key: str
    ) -> None:
        """On the service's own clock: an earn that waited for the member's lock is stamped after the
        entries written meanwhile, so a client reading the ledger `since` the last time it saw misses none."""
        async with serving(settings) as (served, client):
            member_id = str((await enrol(client, pos_key))["id"])

            def earn_order(n: int) -> Request:
                body = {"order_ref": f"T-{n}", "amount": cny(1_000)}
                return client.post(f"/v1/members/{member_id}/earn", json=body, headers=bearer(pos_key))

            def redeem(n: int) -> Request:
                body = {"points": 5, "order_ref": f"S-{n}"}
                return client.post(f"/v1/members/{member_id}/redeem", json=body, headers=bearer(pos_key))

            requests = [earn_order(n) for n in range(16)] + [redeem(n) for n in range(8)]
            responses = await all_at_once(served, [member_id], requests)
            assert {r.status_code for r in responses} <= {200, 422}, [r.text for r in responses]
            entries = await assert_entries_chain(client, pos_key, member_id)
        stamped = [datetime.fromisoformat(entry["created_at"]) for entry in entries]
        assert stamped == sorted(stamped), [(e["type"], e["order_ref"], e["created_at"]) for e in entries]


class TestOneOrderEarnedAtOnce:
    async def test_earns_and_redeems_at_once_settle_what_the_jobs_owe_once(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        """Each change settles the lots past their end and the holds past their time before it changes the
        account (lock_earner), behind the member's lock: whichever request comes first settles them, once,
        and every reply gives the balance its entry recorded."""
        member_id = str((await enrol(client, pos_key))["id"])
        await earn(client, pos_key, member_id, 50_000, order_ref="ENDING")  # 500 points, ending in 12 months
        held = await client.post(
            f"/v1/members/{member_id}/holds",
            json={"points": 100, "order_ref": "H-PAST", "ttl_seconds": 60},
            headers=bearer(pos_key),
        )
        assert held.status_code == 201, held.text
        clock.advance(timedelta(days=300))
        await earn(client, pos_key, member_id, 30_000, order_ref="GOOD")  # 300 points, good for a year
        clock.advance(timedelta(days=66))  # ENDING's points have ended; the hold has long run out

        def earn_order(n: int) -> Request:
            body = {"order_ref": f"E-{n}", "amount": cny(1_000)}  # 10 points
            return client.post(f"/v1/members/{member_id}/earn", json=body, headers=bearer(pos_key))

        def redeem(n: int) -> Request:
            body = {"points": 20, "order_ref": f"R-{n}"}
            return client.post(f"/v1/members/{member_id}/redeem", json=body, headers=bearer(pos_key))

        requests: list[Request] = []
        for n in range(10):
            requests += [earn_order(n), redeem(n)]
        responses = await all_at_once(app, [member_id], requests)
        assert outcomes(responses) == {(200, None): 20}, [r.text for r in responses]

        entries = await assert_entries_chain(client, pos_key, member_id)
        assert [(e["type"], e["amount"]) for e in entries if e["type"] in ("expire", "release")] == [
            ("release", 0),
            ("expire", -500),
        ]
        earns = [r for r in responses if r.request.url.path.endswith("/earn")]
        await assert_earns_recorded_as_replied(app, entries, earns)
        assert (await points(client, pos_key, member_id))["balance"] == 300 + 100 - 200
        await assert_ledger_invariant(app, member_id)

    async def test_twenty_earns_of_one_order_earn_once(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, ecommerce_key: str
    ) -> None:
        member_id = str((await enrol(client, pos_key))["id"])
        await earn(client, pos_key, member_id, 10_000, order_ref="BEFORE")  # 100 points
        body = {"order_ref": "SAME-ORDER", "amount": cny(12_345)}  # 123 points

        def attempt(n: int) -> Request:
            # Tills retrying with keys of their own, or none, from two channels.
            key = pos_key if n % 2 else ecommerce_key
            headers = bearer(key) if n % 3 == 0 else bearer(key, idempotency_key=f"till-{n}")
            return client.post(f"/v1/members/{member_id}/earn", json=body, headers=headers)

        responses = await all_at_once(app, [member_id], [attempt(n) for n in range(20)])

        assert outcomes(responses) == {(200, None): 1, (409, "order_already_earned"): 19}, [
            r.text for r in responses
        ]
        [winner] = [r.json() for r in responses if r.status_code == 200]
        assert (winner["points_earned"], winner["balance"]) == (123, 223)
        summary = await points(client, pos_key, member_id)
        assert (summary["balance"], summary["lifetime_earned"]) == (223, 223)
        entries = await assert_entries_chain(client, pos_key, member_id)
        assert [(e["type"], e["order_ref"], e["amount"]) for e in entries] == [
            ("earn", "BEFORE", 100),
            ("earn", "SAME-ORDER", 123),
        ]
        lots = await rows(
            app, "SELECT order_ref, points, remaining FROM point_lots WHERE order_ref = 'SAME-ORDER'"
        )
        assert lots == [{"order_ref": "SAME-ORDER", "points": 123, "remaining": 123}]
        announced = [e["payload"] for e in await events(app, "points.earned")]
        assert [(p["order_ref"], p["points"], p["balance"]) for p in announced] == [
            ("BEFORE", 100, 100),
            ("SAME-ORDER", 123, 223),
        ]
        [order] = await rows(
            app, "SELECT amount_minor, points_earned FROM orders WHERE order_ref = 'SAME-ORDER'"
        )
        assert order == {"amount_minor": 12_345, "points_earned": 123}
        await assert_earns_recorded_as_replied(app, entries, [r for r in responses if r.status_code == 200])
        await assert_ledger_invariant(app, member_id)

    async def test_one_order_earned_by_three_members_at_once_is_one_members(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        members = [str((await enrol(client, pos_key))["id"]) for _ in range(3)]
        body = {"order_ref": "SHARED", "amount": cny(5_000)}  # 50 points

        responses = await all_at_once(
            app,
            members,
            [
                client.post(f"/v1/members/{member_id}/earn", json=body, headers=bearer(pos_key))
                for _ in range(4)
                for member_id in members
            ],
        )

        assert outcomes(responses)[(200, None)] == 1, [r.text for r in responses]
        [winner] = [r for r in responses if r.status_code == 200]
        owner = winner.request.url.path.split("/")[3]
        for response in responses:
            if response is winner:
                continue
            mine = response.request.url.path.split("/")[3] == owner
            expected = "order_already_earned" if mine else "order_belongs_to_another_member"
            assert (response.status_code, response.json()["code"]) == (409, expected), response.text
        for member_id in members:
            assert (await points(client, pos_key, member_id))["balance"] == (50 if member_id == owner else 0)
        [order] = await rows(app, "SELECT member_id, points_earned FROM orders")
        assert (as_uuid(order["member_id"]), order["points_earned"]) == (uuid.UUID(owner), 50)
        assert len(await events(app, "points.earned")) == 1
        await assert_ledger_invariant(app)


class TestEarnsRacingRefundsAndAdjustments:
    async def test_earns_with_refunds_of_other_orders_and_adjustments_keep_the_books(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        member_id = str((await enrol(client, pos_key))["id"])
        await earn(client, pos_key, member_id, 100_000, order_ref="BIG")  # 1000 points
        paid = await client.post(
            f"/v1/members/{member_id}/redeem",
            json={"points": 200, "order_ref": "PAID", "order_total": cny(10_000)},
            headers=bearer(pos_key),
        )
        assert paid.status_code == 200, paid.text
        await earn(client, pos_key, member_id, 8_000, order_ref="PAID")  # the cash part earns 80
        start = 1000 - 200 + 80

        def earn_order(n: int) -> Request:
            body = {"order_ref": f"E-{n}", "amount": cny((n + 1) * 1_000)}  # 10·(n+1) points
            return client.post(f"/v1/members/{member_id}/earn", json=body, headers=bearer(pos_key))

        def refund(order_ref: str, amount: int) -> Request:
            return client.post(
                f"/v1/orders/{order_ref}/refund", json={"amount": cny(amount)}, headers=bearer(pos_key)
            )

        def adjust(points: int) -> Request:
            body = {"points": points, "reason": "goodwill" if points > 0 else "correction"}
            return client.post(f"/v1/members/{member_id}/adjustments", json=body, headers=bearer(admin_key))

        requests: list[Request] = []
        for n in range(10):
            requests.append(earn_order(n))
            if n < 5:
                requests.append(refund("BIG", 10_000))  # a tenth of BIG each: 100 points back each
            if n < 2:
                requests.append(refund("PAID", 5_000))  # half of PAID each: 100 given back, 40 taken
            if n < 5:
                requests.append(adjust(25 if n % 2 == 0 else -30))
        responses = await all_at_once(app, [member_id], requests)

        earns = [r for r in responses if r.request.url.path.endswith("/earn")]
        refunds = [r for r in responses if r.request.url.path.endswith("/refund")]
        adjustments = [r for r in responses if r.request.url.path.endswith("/adjustments")]
        assert outcomes(earns) == {(200, None): 10}, [r.text for r in earns]
        assert outcomes(refunds) == {(200, None): 7}, [r.text for r in refunds]
        assert outcomes(adjustments) == {(201, None): 5}, [r.text for r in adjustments]
        assert sorted(r.json()["points_earned"] for r in earns) == [10 * (n + 1) for n in range(10)]
        assert Counter(
            (
                r.json()["order_ref"],
                r.json()["points_taken_back"],
                r.json()["points_given_back"],
                r.json()["shortfall"],
            )
            for r in refunds
        ) == {("BIG", 100, 0, 0): 5, ("PAID", 40, 100, 0): 2}

        expected = start + 550 - 500 + (200 - 80) + (3 * 25 - 2 * 30)
        summary = await points(client, pos_key, member_id)
        assert (summary["balance"], summary["held"]) == (expected, 0)
        # What the refunds took back (500 of BIG's, 80 of PAID's) leaves what the member earned in all.
        assert summary["lifetime_earned"] == 1000 + 80 + 550 - 500 - 80

        entries = await assert_entries_chain(client, pos_key, member_id)
        await assert_earns_recorded_as_replied(app, entries, earns)
        by_id = {entry["id"]: entry for entry in entries}
        for reply in adjustments:
            entry = by_id[reply.json()["entry_id"]]
            assert (entry["type"], entry["amount"], entry["balance_after"]) == (
                "adjust",
                reply.json()["points"],
                reply.json()["balance"],
            )
        refund_entries = [e for e in entries if e["type"] == "refund"]
        assert sorted(e["balance_after"] for e in refund_entries) == sorted(
            r.json()["balance"] for r in refunds
        )
        orders = {
            o["order_ref"]: o
            for o in await rows(
                app,
                "SELECT order_ref, refunded_minor, points_taken_back, points_given_back, points_shortfall"
                " FROM orders WHERE order_ref IN ('BIG', 'PAID')",
            )
        }
        assert (
            orders["BIG"]["refunded_minor"],
            orders["BIG"]["points_taken_back"],
            orders["BIG"]["points_given_back"],
        ) == (50_000, 500, 0)
        assert (
            orders["PAID"]["refunded_minor"],
            orders["PAID"]["points_taken_back"],
            orders["PAID"]["points_given_back"],
        ) == (10_000, 80, 200)
        assert orders["BIG"]["points_shortfall"] == orders["PAID"]["points_shortfall"] == 0
        assert len(await events(app, "points.refunded")) == 7
        assert len(await events(app, "points.adjusted")) == 5
        await assert_ledger_invariant(app, member_id)
