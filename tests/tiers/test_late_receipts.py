"""Receipts a till recorded offline and synced later (`occurred_at`): they are earned on the tier the member
held when they were made, as they are by the earning rules and the plans of that time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from tests.builders import enrol
from tests.conftest import START
from tests.points.helpers import earn, set_program
from tests.tiers.test_qualification import history, put_override, review, standard_ladder, tier_of


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


@pytest.mark.usefixtures("ladder")
class TestReceiptOfAYearPast:
    """Silver is won by 100000 of spend in a calendar year (Asia/Shanghai), kept to 1 January plus 30 days."""

    async def test_a_receipt_from_last_year_synced_in_january_wins_last_years_tier(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        member = await enrol(client, pos_key)
        clock.set(datetime(2026, 11, 1, tzinfo=UTC))
        await earn(client, pos_key, member["id"], 60_000)
        clock.set(datetime(2027, 1, 3, 4, 0, tzinfo=UTC))
        late = await earn(client, pos_key, member["id"], 50_000, occurred_at="2026-12-30T04:00:00Z")
        # 110000 in 2026: silver, as an online till would have made them on 30 December
        assert (late["tier"]["code"], late["tier_changed"]) == ("silver", True)
        status = await tier_of(client, pos_key, member["id"])
        assert status["kept_until"] == "2027-01-30T16:00:00Z"  # 1 January 2027 in Shanghai, plus 30 days
        upgrade = (await history(client, pos_key, member["id"]))[0]
        assert (upgrade["change"], upgrade["qualification"]["silver"]["value"]) == ("upgrade", 110_000)
        assert upgrade["qualification"]["silver"]["window_start"] == "2025-12-31T16:00:00Z"
        # and the review of 2026 keeps them silver through 2027
        clock.set(datetime(2027, 3, 1, tzinfo=UTC))
        assert await review(app) == 1
        renewed = await tier_of(client, pos_key, member["id"])
        assert (renewed["tier"]["code"], renewed["kept_until"]) == ("silver", "2028-01-30T16:00:00Z")

    async def test_last_years_spend_short_of_the_bar_moves_nobody(
        self, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        member = await enrol(client, pos_key)
        clock.set(datetime(2026, 11, 1, tzinfo=UTC))
        await earn(client, pos_key, member["id"], 60_000)
        clock.set(datetime(2027, 1, 3, 4, 0, tzinfo=UTC))
        await earn(client, pos_key, member["id"], 50_000)  # this year's: 2026 stays at 60000
        late = await earn(client, pos_key, member["id"], 30_000, occurred_at="2026-12-30T04:00:00Z")
        assert (late["tier"]["code"], late["tier_changed"]) == ("member", False)
        assert [change["change"] for change in await history(client, pos_key, member["id"])] == []
