from __future__ import annotations

import time
from decimal import Decimal

import httpx
from sqlalchemy import text

from loyalty_api.cache import TtlCache
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.graphql.snapshot import Snapshot
from loyalty_api.program.service import get_program
from tests.conftest import bearer
from tests.points.helpers import set_program


def test_an_aged_entry_is_loaded_again_by_one_caller_while_the_others_keep_the_old_value() -> None:
    cache = TtlCache(0.05)
    cache.put("programme", "old", cache.stamp())
    assert cache.get("programme") == "old"
    time.sleep(0.06)

    assert cache.get("programme") is None  # the first caller after it aged out loads it
    assert cache.get("programme") == "old"  # requests meanwhile do not all load it too
    cache.put("programme", "new", cache.stamp())
    assert cache.get("programme") == "new"


def test_an_entry_nobody_reloads_comes_round_again() -> None:
    cache = TtlCache(0.05)
    cache.put("ladder", "old", cache.stamp())
    time.sleep(0.06)
    assert cache.get("ladder") is None  # that caller failed and put nothing
    time.sleep(0.06)
    assert cache.get("ladder") is None  # so a later caller is asked to load it


def test_a_forgotten_entry_is_loaded_at_once() -> None:
    cache = TtlCache(60)
    cache.put("key:abc", "verified", cache.stamp())
    cache.forget("key:abc")
    assert cache.get("key:abc") is None


def test_a_value_read_before_a_change_is_not_kept_after_the_change_forgot_it() -> None:
    cache = TtlCache(60)
    stamp = cache.stamp()  # a request starts reading the programme
    cache.forget("program")  # a change commits meanwhile (here or, by a notification, elsewhere)
    cache.put("program", "read before the change", stamp)
    assert cache.get("program") is None  # the next caller reads it again
    cache.put("program", "read after", cache.stamp())
    assert cache.get("program") == "read after"


def test_clearing_drops_values_being_read_too() -> None:
    cache = TtlCache(60)
    stamp = cache.stamp()
    cache.clear()  # the listener reconnected: it may have missed changes
    cache.put("tier_ladder", "old", stamp)
    assert cache.get("tier_ladder") is None


async def test_a_snapshot_older_than_a_change_keeps_nothing_of_what_it_reads_after_it(
    client: httpx.AsyncClient, units: UnitsOfWork, admin_key: str, pos_key: str
) -> None:
    """A GraphQL request reads one snapshot throughout; a programme change committed after its first read
    and before it first reads the programme cleared the entry already: what it reads is the programme from
    before, and it must not be kept for everyone after."""
    await set_program(client, admin_key, earn_rate="1")
    snapshot = Snapshot(units)
    try:
        async with snapshot.read() as uow:
            await uow.session.execute(text("SELECT count(*) FROM members"))  # the snapshot starts here
        await set_program(client, admin_key, earn_rate="7")
        async with snapshot.read() as uow:
            assert (await get_program(uow)).earn_rate == Decimal(1)  # as the snapshot sees it
    finally:
        await snapshot.close()
    program = await client.get("/v1/program", headers=bearer(pos_key))
    assert program.json()["earn_rate"] == "7"
