"""Activities of one member at the same moment: they take turns behind the member's account lock, so no cap
is passed and no ref earns twice, however many arrive together. On PostgreSQL the account row is held from a
connection of our own until the requests pile up behind it (see test_earn_races.all_at_once); on SQLite
`BEGIN IMMEDIATE` serializes them, and the outcome must be the same."""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI

from tests.activities.helpers import add_activity_rule, record
from tests.builders import enrol
from tests.concurrency.test_earn_races import Request, all_at_once, assert_entries_chain, outcomes
from tests.conftest import bearer
from tests.inspect_db import events, rows
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import points, set_program


def _activity(
    client: httpx.AsyncClient, key: str, member_id: str, ref: str, type: str = "check_in"
) -> Request:
    return client.post(
        f"/v1/members/{member_id}/activities", json={"type": type, "ref": ref}, headers=bearer(key)
    )


class TestActivitiesAtOnce:
    async def test_many_activities_at_once_stay_within_the_daily_cap(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        await add_activity_rule(client, admin_key, type="share", name="Share", points=7, daily_cap=3)
        member_id = (await enrol(client, pos_key))["id"]
        requests = [_activity(client, pos_key, member_id, f"share-{n}", "share") for n in range(16)]
        responses = await all_at_once(app, [member_id], requests)
        assert outcomes(responses) == {(201, None): 3, (409, "activity_cap_reached"): 13}
        assert (await points(client, pos_key, member_id))["balance"] == 21
        recorded = await rows(app, "SELECT ref FROM member_activities")
        assert sorted(r["ref"] for r in recorded) == sorted(
            r.json()["ref"] for r in responses if r.status_code == 201
        )
        assert len(await events(app, "activity.recorded")) == 3
        await assert_entries_chain(client, pos_key, member_id)
        await assert_ledger_invariant(app, member_id)

    async def test_one_ref_sent_many_times_at_once_earns_once(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        await add_activity_rule(client, admin_key, type="review", name="Review", points=40, period_cap=5)
        member_id = (await enrol(client, pos_key))["id"]
        await record(client, pos_key, member_id, "warm-up", "review")
        responses = await all_at_once(
            app, [member_id], [_activity(client, pos_key, member_id, "rv-1", "review") for _ in range(10)]
        )
        assert outcomes(responses) == {(201, None): 1, (200, None): 9}
        assert len({r.json()["id"] for r in responses}) == 1
        # One answer, the first; the nine others say it is that first one again.
        assert len({json.dumps(r.json() | {"already_recorded": None}) for r in responses}) == 1
        assert sorted(r.json()["already_recorded"] for r in responses) == [False] + [True] * 9
        assert (await points(client, pos_key, member_id))["balance"] == 80
        await assert_entries_chain(client, pos_key, member_id)
        await assert_ledger_invariant(app, member_id)
