"""Receipts a till recorded offline and synced later (`occurred_at`): they are earned on the tier the member
held when they were made, as they are by the earning rules and the plans of that time."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from tests.builders import enrol
from tests.conftest import START
from tests.points.helpers import earn, set_program
from tests.tiers.test_qualification import put_override, review, standard_ladder, tier_of


@pytest.fixture
async def ladder(client: httpx.AsyncClient, admin_key: str) -> None:
    await set_program(client, admin_key)
    await standard_ladder(client, admin_key)  # silver x1.2 at 100000 in a calendar year, gold x1.5


@pytest.mark.usefixtures("ladder")
class TestTierOfTheReceipt:
    async def test_a_receipt_made_before_an_upgrade_earns_at_the_tier_it_was_made_on(
        self, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        """It earned at the tier of the sync, silver's x1.2, though the purchase that made the member silver
        afterwards earned at x1 itself."""
        member = await enrol(client, pos_key)
        clock.advance(timedelta(days=5))
        upgrade = await earn(client, pos_key, member["id"], 100_000)
        assert (upgrade["tier"]["code"], upgrade["points_earned"]) == ("silver", 1000)
        late = await earn(client, pos_key, member["id"], 10_000, occurred_at=START.isoformat())
        assert late["points_earned"] == 100
        now = await earn(client, pos_key, member["id"], 10_000)
        assert now["points_earned"] == 120  # a receipt of now: silver's

    async def test_a_receipt_made_on_a_tier_the_member_has_lost_since_earns_at_that_tier(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        member = await enrol(client, pos_key)
        await put_override(client, admin_key, member["id"], "gold", START + timedelta(days=2), "trial")
        bought = START + timedelta(days=1)
        clock.set(START + timedelta(days=3))
        assert await review(app) == 1  # the override ended: back on the entry tier
        assert (await tier_of(client, pos_key, member["id"]))["tier"]["code"] == "member"
        late = await earn(client, pos_key, member["id"], 10_000, occurred_at=bought.isoformat())
        assert late["points_earned"] == 150  # gold's x1.5
