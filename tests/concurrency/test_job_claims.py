"""Scheduled jobs run by several workers at once: each member's due work is done once, by whichever worker
claims the member, and a member another transaction holds (a till's change under way) is skipped, not waited
for, then handled by the next run."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Uuid, bindparam, text

from loyalty_api.clock import FrozenClock
from loyalty_api.points.expiry import expire_points
from loyalty_api.points.holds import expire_holds
from loyalty_api.tiers.membership import review_tiers
from tests.builders import enrol
from tests.conftest import units_of
from tests.databases import is_postgres
from tests.inspect_db import rows
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import earn, hold_points, set_program
from tests.tiers.test_qualification import KEPT_2026, standard_ladder

# Bounds a run that would wait for a lock this test holds (it would never end): not a measure of speed.
NEVER_ENDING = 60


async def _members_with_due_points(
    client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock, n: int
) -> list[str]:
    """`n` members with 100 points each, past their end."""
    await set_program(client, admin_key, expiry_months=12)
    members = [str((await enrol(client, pos_key))["id"]) for _ in range(n)]
    for member in members:
        await earn(client, pos_key, member, 10_000)
    clock.advance(timedelta(days=370))
    return members


@asynccontextmanager
async def _held(app: FastAPI, table: str, column: str, member_id: str) -> AsyncIterator[None]:
    """The member's row of `table` locked by another transaction, as a till's change holds it."""
    lock = text(f"SELECT 1 FROM {table} WHERE {column} = :m FOR UPDATE").bindparams(
        bindparam("m", type_=Uuid())
    )
    async with units_of(app).database.engine.connect() as other:
        await other.execute(lock, {"m": uuid.UUID(member_id)})
        yield
        await other.rollback()


async def test_two_expiry_runs_at_once_expire_each_member_once(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
) -> None:
    members = await _members_with_due_points(client, admin_key, pos_key, clock, 30)
    runs = await asyncio.gather(*(expire_points(units_of(app), batch=7) for _ in range(2)))
    assert (sum(run.members for run in runs), sum(run.points for run in runs)) == (30, 3_000)
    expiries = await rows(app, "SELECT member_id FROM ledger_entries WHERE type = 'expire'")
    assert Counter(str(uuid.UUID(str(row["member_id"]))) for row in expiries) == dict.fromkeys(members, 1)
    for member in members:
        await assert_ledger_invariant(app, member)


# A member's rows as a job claims them: their account's, and their own (a change made on request, a profile's
# update, an erasure or another job may hold it alone).
MEMBER_ROWS = pytest.mark.parametrize(
    ("table", "column"), [("points_accounts", "member_id"), ("members", "id")], ids=["account", "member"]
)


@pytest.mark.skipif(not is_postgres(), reason="holds a member's row from a second PostgreSQL connection")
@MEMBER_ROWS
async def test_the_expiry_skips_a_member_another_transaction_holds(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    clock: FrozenClock,
    table: str,
    column: str,
) -> None:
    busy, free = await _members_with_due_points(client, admin_key, pos_key, clock, 2)
    async with _held(app, table, column, busy):
        run = await asyncio.wait_for(expire_points(units_of(app)), NEVER_ENDING)
        assert (run.members, run.points) == (1, 100)
    run = await expire_points(units_of(app))
    assert (run.members, run.points) == (1, 100)
    for member in (busy, free):
        await assert_ledger_invariant(app, member)


@pytest.mark.skipif(not is_postgres(), reason="holds a member's row from a second PostgreSQL connection")
@MEMBER_ROWS
async def test_the_hold_release_skips_a_member_another_transaction_holds(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    ecommerce_key: str,
    clock: FrozenClock,
    table: str,
    column: str,
) -> None:
    """The hold job claims its members as the expiry does: a member another transaction holds keeps their
    hold past its time until the next run, and the others' are released meanwhile."""
    await set_program(client, admin_key)
    busy, free = [str((await enrol(client, pos_key))["id"]) for _ in range(2)]
    for member in (busy, free):
        await earn(client, pos_key, member, 10_000)
        await hold_points(client, ecommerce_key, member, 40, f"WEB-{member}", ttl=60)
    clock.advance(timedelta(seconds=61))
    async with _held(app, table, column, busy):
        assert await asyncio.wait_for(expire_holds(units_of(app)), NEVER_ENDING) == 1
    assert await expire_holds(units_of(app)) == 1
    assert await expire_holds(units_of(app)) == 0
    released = await rows(app, "SELECT member_id FROM holds WHERE status = 'expired'")
    assert {str(uuid.UUID(str(row["member_id"]))) for row in released} == {busy, free}
    for member in (busy, free):
        await assert_ledger_invariant(app, member)


@pytest.mark.skipif(not is_postgres(), reason="holds a member's row from a second PostgreSQL connection")
async def test_the_tier_review_skips_a_member_another_transaction_holds(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
) -> None:
    await set_program(client, admin_key)
    await standard_ladder(client, admin_key)
    busy, free = [str((await enrol(client, pos_key))["id"]) for _ in range(2)]
    for member in (busy, free):
        await earn(client, pos_key, member, 100_000)  # silver, reviewed at KEPT_2026
    clock.set(KEPT_2026)
    async with _held(app, "members", "id", busy):
        assert await asyncio.wait_for(review_tiers(units_of(app)), NEVER_ENDING) == 1
    assert await review_tiers(units_of(app)) == 1
    assert await review_tiers(units_of(app)) == 0


async def test_two_tier_reviews_at_once_review_each_member_once(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
) -> None:
    await set_program(client, admin_key)
    await standard_ladder(client, admin_key)
    members = [str((await enrol(client, pos_key))["id"]) for _ in range(20)]
    for member in members:
        await earn(client, pos_key, member, 100_000)
    clock.set(KEPT_2026)
    runs = await asyncio.gather(*(review_tiers(units_of(app), batch=6) for _ in range(2)))
    assert sum(runs) == 20
    changes = await rows(app, "SELECT member_id FROM tier_changes WHERE change = 'renewal'")
    assert Counter(str(uuid.UUID(str(row["member_id"]))) for row in changes) == dict.fromkeys(members, 1)
