"""Many earns at once for a member crossing a tier threshold: one upgrade, one event, the ledger intact; a
change of a tier's rules while its members earn."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from loyalty_api.clock import FrozenClock
from loyalty_api.settings import Settings
from loyalty_api.tiers.redating import redate_window_ends
from tests.builders import add_tier, enrol, unique_phone
from tests.conftest import bearer, units_of
from tests.databases import is_postgres, lock_waiters, side_engine, until_waiting_for_a_lock
from tests.inspect_db import events, rows
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import cny, earn, set_program
from tests.tiers.test_qualification import KEPT_2027, iso, put_override, standard_ladder, tier_of
from tests.tiers.test_rule_changes import END_OF_2026, END_OF_2027, change_tier, stored_end


async def test_concurrent_earns_upgrade_once(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    await set_program(client, admin_key)
    await add_tier(client, admin_key, "member", rank=0)
    await add_tier(client, admin_key, "silver", rank=1, threshold=100_000, points_multiplier="2")
    member = await enrol(client, pos_key)

    async def buy(n: int) -> httpx.Response:
        return await client.post(
            f"/v1/members/{member['id']}/earn",
            json={"order_ref": f"T-{n}", "amount": cny(10_000)},
            headers=bearer(pos_key),
        )

    replies = await asyncio.gather(*(buy(n) for n in range(30)))
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies if r.status_code != 200]
    # Earns are serialized by the account row: the 10th purchase qualifies, and only it says so.
    assert sum(r.json()["tier_changed"] for r in replies) == 1
    assert len(await events(app, "tier.upgraded")) == 1
    changes = await rows(app, "SELECT change, to_code FROM tier_changes")
    assert changes == [{"change": "upgrade", "to_code": "silver"}]
    # 10 purchases at 1×, 20 at silver's 2×: 100 points each at the base rate.
    points = sorted(r.json()["points_earned"] for r in replies)
    assert points == [100] * 10 + [200] * 20
    await assert_ledger_invariant(app, member["id"])


async def test_operators_changing_the_ladder_at_once_get_a_clear_answer(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    async def add(n: int) -> httpx.Response:
        body = {
            "code": f"t{n}",
            "name": f"Tier {n}",
            "rank": n % 5,  # five ranks for ten tiers: half must be refused
            "metric": "spend",
            "window": "calendar_year",
            "threshold": n * 1000,
        }
        return await client.post("/v1/tiers", json=body, headers=bearer(admin_key))

    replies = await asyncio.gather(*(add(n) for n in range(10)))
    outcomes = {(r.status_code, None if r.status_code == 201 else r.json()["code"]) for r in replies}
    assert outcomes <= {
        (201, None),
        (409, "tier_rank_taken"),
        (409, "tier_ladder_changed_meanwhile"),
    }, [r.text for r in replies]
    created = [r.json()["code"] for r in replies if r.status_code == 201]
    ladder = (await client.get("/v1/tiers", headers=bearer(admin_key))).json()
    assert sorted(t["code"] for t in ladder["items"]) == sorted(created)
    assert len({t["rank"] for t in ladder["items"]}) == len(created)
    versions = await rows(app, "SELECT version FROM tier_ladder_versions ORDER BY version")
    assert [v["version"] for v in versions] == list(range(1, len(created) + 1))


async def test_earns_across_tiers_while_a_tier_s_rank_and_window_change_all_go_through(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
) -> None:
    """Members on silver moving up to gold, members whose override has ended going back to silver, members
    moving up onto silver, while two operators change silver's rank and window back and forth: every request
    answers 200. On PostgreSQL a replace that wrote the new rank (FOR UPDATE on silver's row) before waiting
    for the members it re-dates deadlocked with an earn holding one of them and naming silver (a 500)."""
    await set_program(client, admin_key)
    await add_tier(client, admin_key, "member", rank=0)
    await add_tier(
        client, admin_key, "silver", rank=10, threshold=100_000, window="rolling_days", window_days=365
    )
    await add_tier(client, admin_key, "gold", rank=20, threshold=300_000, grace_days=30)
    members = [await enrol(client, pos_key) for _ in range(12)]
    for member in members[:10]:
        await earn(client, pos_key, member["id"], 100_000)  # silver
    for member in members[8:10]:
        await put_override(client, admin_key, member["id"], "gold", datetime(2026, 4, 1, tzinfo=UTC), "promo")
    clock.set(datetime(2026, 4, 2, tzinfo=UTC))  # their overrides have ended; no review has run

    async def buy(member: dict[str, Any]) -> list[httpx.Response]:
        return [
            await client.post(
                f"/v1/members/{member['id']}/earn",
                json={"order_ref": f"MIX-{member['id']}-{n}", "amount": cny(60_000)},
                headers=bearer(pos_key),
            )
            for n in range(4)
        ]

    async def change() -> list[httpx.Response]:
        replies = []
        for n in range(6):
            window = {"window": "calendar_year"} if n % 2 else {"window": "rolling_days", "window_days": 400}
            body = {
                "name": "Silver",
                "rank": 11 + 5 * (n % 2),
                "metric": "spend",
                "threshold": 100_000,
                "points_multiplier": "1",
                "grace_days": 0,
                "benefit_ids": [],
            }
            replies.append(
                await client.put("/v1/tiers/silver", json=body | window, headers=bearer(admin_key))
            )
        return replies

    answered = await asyncio.gather(change(), change(), *(buy(member) for member in members))
    replies = [reply for replies in answered for reply in replies]
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies if r.status_code != 200]
    for member in members:
        await assert_ledger_invariant(app, member["id"])


@pytest.mark.skipif(not is_postgres(), reason="holds rows from a second PostgreSQL connection")
class TestRuleChangeUnderMembers:
    """A change of a tier's grace while members of it are busy at the till."""

    async def test_a_grace_change_waits_for_no_member_of_the_tier(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, settings: Settings
    ) -> None:
        """It wrote every member's date, so it waited for any member a till held, and on a large tier ran
        past the request's time limit: now it writes nothing to them."""
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 150_000)  # silver, kept until 1 January 2027 + 30 days
        engine = side_engine(settings)
        try:
            async with engine.connect() as till, engine.connect() as watcher:
                await watcher.execution_options(isolation_level="AUTOCOMMIT")
                await till.execute(
                    text("SELECT 1 FROM members WHERE id = :m FOR UPDATE"), {"m": uuid.UUID(member["id"])}
                )
                change = asyncio.ensure_future(change_tier(client, admin_key, "silver", grace_days=0))
                await until_waiting_for_a_lock(watcher, change)
                waiting = await lock_waiters(watcher)
                await till.rollback()
                await change
        finally:
            await engine.dispose()
        assert waiting == 0
        assert (await tier_of(client, pos_key, member["id"]))["kept_until"] == END_OF_2026

    async def test_a_window_change_waits_for_no_member_of_the_tier(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, settings: Settings
    ) -> None:
        """It locked every member judged on the tier and moved their ends: it waited for any a till held,
        and on a large tier ran past the request's time limit. Now it writes the tier alone; the worker
        re-dates the members, passing over one a till holds until its next run."""
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key)
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        held, other = await enrol(client, pos_key), await enrol(client, pos_key)
        for member in (held, other):
            await earn(client, pos_key, member["id"], 100_000)  # silver, its window ending 16 March 2027
        engine = side_engine(settings)
        try:
            async with engine.connect() as till, engine.connect() as watcher:
                await watcher.execution_options(isolation_level="AUTOCOMMIT")
                await till.execute(
                    text("SELECT 1 FROM members WHERE id = :m FOR UPDATE"), {"m": uuid.UUID(held["id"])}
                )
                change = asyncio.ensure_future(
                    change_tier(client, admin_key, "silver", window="calendar_year", window_days=None)
                )
                await until_waiting_for_a_lock(watcher, change)
                waiting = await lock_waiters(watcher)
                await change
                assert await redate_window_ends(units_of(app)) == 1  # the other: the till holds this one
                await till.rollback()
        finally:
            await engine.dispose()
        assert waiting == 0
        assert await redate_window_ends(units_of(app)) == 1
        for member in (held, other):
            assert await stored_end(app, member["id"]) == (datetime(2027, 12, 31, 16, tzinfo=UTC), 2)
            status = await tier_of(client, pos_key, member["id"])
            assert (status["kept_until"], status["keep"]["by"]) == (iso(KEPT_2027), END_OF_2027)

    async def test_an_earn_onto_the_tier_during_a_grace_change_is_judged_on_its_window(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, settings: Settings
    ) -> None:
        """The earn worked out its date with the grace it had read, 30 days, and wrote it after the change had
        re-dated the tier's members, 0 days: the member kept silver a month past 2026, and the review then
        judged January 2027 for 2026. Its order is held by another transaction between the two, so that the
        change comes in between."""
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key)
        member, other = await enrol(client, pos_key), await enrol(client, pos_key)
        held = _earn_waiting_on_its_order(
            settings, client, pos_key, member["id"], other["id"], "RACE-1", 150_000
        )
        async with held as (earning, _):
            assert not earning.done()
            await change_tier(client, admin_key, "silver", grace_days=0)
        reply = await earning
        assert reply.status_code == 200, reply.text
        assert reply.json()["tier"]["code"] == "silver"
        status = await tier_of(client, pos_key, member["id"])
        assert (status["kept_until"], status["keep"]["by"]) == (END_OF_2026, END_OF_2026)

    async def test_a_renewal_under_way_when_the_window_becomes_a_year_moves_to_its_1_january(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        settings: Settings,
        clock: FrozenClock,
    ) -> None:
        """The change read the span of its members' ends before it waited for the one an earn held, so the
        end that renewal wrote (10 January 2028) lay past the last 1 January it moved ends to, and stayed: a
        calendar year judged up to the middle of January."""
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key)
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        member, other = await enrol(client, pos_key), await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)  # silver until 16 March 2027 and its grace
        clock.set(datetime(2027, 1, 10, tzinfo=UTC))  # the purchase renews silver to 10 January 2028
        held = _earn_waiting_on_its_order(
            settings, client, pos_key, member["id"], other["id"], "RENEW-1", 1_000
        )
        async with held as (earning, watcher):
            change = asyncio.ensure_future(
                change_tier(client, admin_key, "silver", window="calendar_year", window_days=None)
            )
            await _until_it_waits_too(watcher, change)
        reply = await earning
        await change
        assert reply.status_code == 200, reply.text
        status = await tier_of(client, pos_key, member["id"])
        year_2028 = "2028-12-31T16:00:00Z"  # 1 January 2029 in Shanghai
        assert (status["kept_until"], status["keep"]["by"]) == ("2029-01-30T16:00:00Z", year_2028)

    async def test_an_upgrade_onto_the_tier_during_a_change_of_its_window_is_judged_on_the_new_window(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, settings: Settings
    ) -> None:
        """The earn read the ladder (silver: 365 days), then the change made silver a calendar year and moved
        its members' ends to the 1 January after them, then the earn upgraded its member onto silver with
        the end of a 365-day window (16 March 2027): a window the tier no longer has, a year judged up to
        March. The earn waits on its order between the two, holding its member, whom the change does not
        wait for (not on silver yet)."""
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key)
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        holder, member, other = [await enrol(client, pos_key) for _ in range(3)]
        await earn(client, pos_key, holder["id"], 100_000)  # silver, its window ending 16 March 2027
        await earn(client, pos_key, member["id"], 60_000)
        held = _earn_waiting_on_its_order(
            settings, client, pos_key, member["id"], other["id"], "UP-1", 40_000
        )
        async with held as (earning, _):
            await change_tier(client, admin_key, "silver", window="calendar_year", window_days=None)
            assert not earning.done()
        reply = await earning
        assert reply.status_code == 200, reply.text
        assert (reply.json()["tier"]["code"], reply.json()["tier_changed"]) == ("silver", True)
        for someone in (holder, member):
            status = await tier_of(client, pos_key, someone["id"])
            assert (status["kept_until"], status["keep"]["by"]) == (iso(KEPT_2027), END_OF_2027)
        assert await redate_window_ends(units_of(app)) == 2  # the worker stores them so
        assert await stored_end(app, member["id"]) == await stored_end(app, holder["id"])

    async def test_an_override_ending_at_the_till_during_a_window_change_is_no_deadlock(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        settings: Settings,
        clock: FrozenClock,
    ) -> None:
        """The earn holds the member, whose override has ended, and moves them back onto silver (its foreign
        key takes a key share of the tier's row); the change held silver's row and waited for the members it
        re-dated. A replace's lock of the tier row was FOR UPDATE, which the key share waits for: PostgreSQL
        found the deadlock and the PUT answered 500. Now the change writes no member."""
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key)
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        member, other = await enrol(client, pos_key), await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)  # silver
        await put_override(client, admin_key, member["id"], "gold", datetime(2026, 6, 1, tzinfo=UTC), "promo")
        clock.set(datetime(2026, 7, 1, tzinfo=UTC))  # the override has ended; no review has run
        held = _earn_waiting_on_its_order(settings, client, pos_key, member["id"], other["id"], "OVER-1", 100)
        async with held as (earning, watcher):
            change = asyncio.ensure_future(
                change_tier(client, admin_key, "silver", window="calendar_year", window_days=None)
            )
            await _until_it_waits_too(watcher, change)  # for the member the earn holds
        reply = await earning
        await change  # 200, or change_tier's assertion says what it answered
        assert reply.status_code == 200, reply.text
        silver = await client.get("/v1/tiers/silver", headers=bearer(admin_key))
        assert silver.json()["window"] == "calendar_year"
        status = await tier_of(client, pos_key, member["id"])
        assert status["tier"]["code"] == "silver" and status["override_until"] is None

    async def test_an_upgrade_off_the_tier_during_a_change_of_its_rank_and_window_is_no_deadlock(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, settings: Settings
    ) -> None:
        """The earn holds a member judged on silver and moves them up to gold: the change it records names
        silver, a key share of silver's row. The change wrote silver's new rank, which makes its lock of the
        row FOR UPDATE (a rank is a key: unique), then waited for the members it re-dated, among them the one
        the earn holds: PostgreSQL found the deadlock and the PUT answered 500. Now the change writes no
        member: the worker re-dates and dates them."""
        await set_program(client, admin_key)
        await add_tier(client, admin_key, "member", rank=0)
        await add_tier(
            client, admin_key, "silver", rank=10, threshold=100_000, window="rolling_days", window_days=365
        )
        await add_tier(client, admin_key, "gold", rank=20, threshold=500_000, grace_days=30)
        member, other = await enrol(client, pos_key), await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)  # silver, judged on 365 days
        held = _earn_waiting_on_its_order(
            settings, client, pos_key, member["id"], other["id"], "UP-1", 400_000
        )
        async with held as (earning, watcher):
            change = asyncio.ensure_future(
                change_tier(client, admin_key, "silver", rank=15, window="calendar_year", window_days=None)
            )
            await _until_it_waits_too(watcher, change)  # for the member the earn holds
        reply = await earning
        await change  # 200, or change_tier's assertion says what it answered
        assert reply.status_code == 200, reply.text
        assert (reply.json()["tier"]["code"], reply.json()["tier_changed"]) == ("gold", True)
        silver = (await client.get("/v1/tiers/silver", headers=bearer(admin_key))).json()
        assert (silver["rank"], silver["window"]) == (15, "calendar_year")
        status = await tier_of(client, pos_key, member["id"])
        assert (status["tier"]["code"], status["keep"]["by"]) == ("gold", END_OF_2026)


# Another member's order of the same reference, not committed: an earn claiming it waits until it is gone.
_HOLD_ORDER = text(
    "INSERT INTO orders (order_ref, member_id, points_earned, points_redeemed, refunded_minor,"
    " points_taken_back, points_given_back, points_shortfall, created_at, updated_at)"
    " VALUES (:ref, :other, 0, 0, 0, 0, 0, 0, now(), now())"
)


@asynccontextmanager
async def _earn_waiting_on_its_order(
    settings: Settings,
    client: httpx.AsyncClient,
    pos_key: str,
    member: str,
    other: str,
    ref: str,
    amount: int,
) -> AsyncIterator[tuple[asyncio.Future[httpx.Response], AsyncConnection]]:
    """An earn for `member` sent while another member's uncommitted order of the same reference holds it: it
    waits there, the member locked and the ladder read. Yields the earn and a connection that sees who waits;
    the order goes when the block ends, and the earn then goes on."""
    engine = side_engine(settings)
    try:
        async with engine.connect() as gate, engine.connect() as watcher:
            await watcher.execution_options(isolation_level="AUTOCOMMIT")
            await gate.execute(_HOLD_ORDER, {"ref": ref, "other": uuid.UUID(other)})
            earning = asyncio.ensure_future(
                client.post(
                    f"/v1/members/{member}/earn",
                    json={"order_ref": ref, "amount": cny(amount)},
                    headers=bearer(pos_key),
                )
            )
            await until_waiting_for_a_lock(watcher, earning)
            yield earning, watcher
            await gate.rollback()
    finally:
        await engine.dispose()


async def _until_it_waits_too(watcher: AsyncConnection, change: asyncio.Future[None]) -> None:
    """Return once a second session waits for a lock (the change, behind the earn), or the change ended (the
    test's assertions then say what went wrong)."""
    for _ in range(500):
        if change.done() or await lock_waiters(watcher) >= 2:
            return
        await asyncio.sleep(0.01)


@pytest.mark.skipif(not is_postgres(), reason="holds rows from a second PostgreSQL connection")
async def test_a_rank_change_waits_for_no_member_of_the_old_entry_tier(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, settings: Settings
) -> None:
    """A change of the ranks that makes another tier the entry tier leaves the old entry tier's members with
    no window to be judged on. It dated them all in the request, locking every one: it waited for any a till
    held, and held the tills of all of them (most of a programme) for as long as it took, which grew with
    their number. Now it writes the tier alone; readers judge them on the tier's window from now, and the
    worker dates them, passing over one a till holds until its next run."""
    await set_program(client, admin_key)
    await add_tier(client, admin_key, "bronze", rank=10)
    await add_tier(client, admin_key, "gold", rank=20, threshold=500_000)
    held, other = sorted([(await enrol(client, pos_key))["id"] for _ in range(2)], key=uuid.UUID)
    engine = side_engine(settings)
    try:
        async with engine.connect() as till, engine.connect() as watcher:
            await watcher.execution_options(isolation_level="AUTOCOMMIT")
            await till.execute(text("SELECT 1 FROM members WHERE id = :m FOR UPDATE"), {"m": uuid.UUID(held)})
            change = asyncio.ensure_future(change_tier(client, admin_key, "bronze", rank=30))
            await until_waiting_for_a_lock(watcher, change)
            assert await lock_waiters(watcher) == 0  # (closing the till lets a change that waits go on)
            await change
            for member in (held, other):  # judged on bronze's window as from the change, before the worker
                status = await tier_of(client, pos_key, member)
                assert (status["tier"]["code"], status["kept_until"]) == ("bronze", END_OF_2026)
            assert await redate_window_ends(units_of(app)) == 1  # the other: the till holds this one
            await till.rollback()
    finally:
        await engine.dispose()
    assert await redate_window_ends(units_of(app)) == 1
    for member in (held, other):
        assert await stored_end(app, member) == (datetime(2026, 12, 31, 16, tzinfo=UTC), 1)
        assert (await tier_of(client, pos_key, member))["kept_until"] == END_OF_2026


# Another member's external id, not committed: an enrolment claiming it waits, its own member inserted.
_HOLD_EXTERNAL_ID = text(
    "INSERT INTO member_external_ids (member_id, system, external_id) VALUES (:m, 'pos', :id)"
)


@pytest.mark.skipif(not is_postgres(), reason="holds rows from a second PostgreSQL connection")
async def test_a_member_enrolled_on_the_entry_tier_while_another_is_ranked_below_it_is_dated(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, settings: Settings
) -> None:
    """The enrolment read bronze as the entry tier and put its member on it while a change ranked basic below
    bronze. When the change dated bronze's undated members itself, that member, not committed yet, was not
    among them: they stayed on bronze, no longer the entry tier, with no window, never to be reviewed. Now the
    worker dates every such member whenever it commits. The enrolment waits on its external id, which another
    transaction holds, between the two."""
    await set_program(client, admin_key)
    await add_tier(client, admin_key, "bronze", rank=10)
    await add_tier(client, admin_key, "gold", rank=20, threshold=500_000)
    await add_tier(client, admin_key, "basic", rank=30, threshold=900_000)
    before = await enrol(client, pos_key)
    engine = side_engine(settings)
    try:
        async with engine.connect() as gate, engine.connect() as watcher:
            await watcher.execution_options(isolation_level="AUTOCOMMIT")
            await gate.execute(_HOLD_EXTERNAL_ID, {"m": uuid.UUID(before["id"]), "id": "C-1"})
            body = {"phone": unique_phone(), "name": "测试会员", "external_ids": {"pos": "C-1"}}
            enrolling = asyncio.ensure_future(client.post("/v1/members", json=body, headers=bearer(pos_key)))
            await until_waiting_for_a_lock(watcher, enrolling)  # its member on bronze, not committed
            await change_tier(client, admin_key, "basic", rank=0, threshold=0)
            assert not enrolling.done()
            await gate.rollback()
            enrolled = await enrolling
    finally:
        await engine.dispose()
    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["tier"]["code"] == "bronze"
    for member in (before, enrolled.json()):
        status = await tier_of(client, pos_key, member["id"])
        assert (status["tier"]["code"], status["kept_until"]) == ("bronze", END_OF_2026)
    assert await redate_window_ends(units_of(app)) == 2  # the worker dates both
    assert await stored_end(app, enrolled.json()["id"]) == await stored_end(app, before["id"])
